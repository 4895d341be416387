use cacheman::cached;

#[cached(with_cached_flag)]
fn plain(n: u64) -> u64 {
    n
}

#[cached(result, with_cached_flag)]
fn fallible(n: u64) -> Result<u64, String> {
    Ok(n)
}

fn main() {
    plain(1);
    let _ = fallible(1);
}
