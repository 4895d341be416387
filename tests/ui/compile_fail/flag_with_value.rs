use cacheman::cached;

#[cached(result = true)]
fn flagged(n: u64) -> Result<u64, ()> {
    Ok(n)
}

fn main() {
    let _ = flagged(1);
}
