use cacheman::cached;

fn helper(id: u32) -> u64 {
    u64::from(id)
}

// `depends_on` paths name #[cached] functions; `helper` is not one.
#[cached(depends_on = helper)]
fn processed(id: u32) -> u64 {
    helper(id) * 5
}

fn main() {
    processed(1);
}
