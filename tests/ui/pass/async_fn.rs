//! `async fn`, plain and with `result` / `option`, as free functions and methods.
#![deny(warnings)]

use cacheman::cached;

#[cached(persistent = false)]
async fn load(id: u32, host: &str) -> String {
    format!("{host}/{id}")
}

#[cached(persistent = false, result)]
async fn checked(id: u32) -> Result<u32, std::num::TryFromIntError> {
    let small = u8::try_from(id)?;
    Ok(u32::from(small))
}

#[cached(persistent = false, option)]
async fn maybe(id: u32) -> Option<u32> {
    id.checked_sub(1)
}

struct Client;

impl Client {
    #[cached(persistent = false)]
    async fn get(&self, path: &str) -> Vec<u8> {
        path.as_bytes().to_vec()
    }
}

fn main() {
    let all = async {
        assert_eq!(load(1, "h").await, "h/1");
        assert_eq!(checked(3).await, Ok(3));
        assert!(checked(300).await.is_err());
        assert_eq!(maybe(0).await, None);
        assert_eq!(Client.get("ab").await, b"ab".to_vec());
    };
    pollster::block_on(all);
}
