use cacheman::cached;

#[cached(result, option)]
fn both(n: u64) -> Result<u64, ()> {
    Ok(n)
}

fn main() {
    let _ = both(1);
}
