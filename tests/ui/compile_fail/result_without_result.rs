use cacheman::cached;

#[cached(result)]
fn plain(n: u64) -> u64 {
    n
}

#[cached(option)]
fn not_an_option(n: u64) -> Result<u64, ()> {
    Ok(n)
}

fn main() {
    plain(1);
    let _ = not_an_option(1);
}
