use cacheman::cached;

#[cached(ttl_secs = 60, result_fallback)]
fn without_result(n: u64) -> u64 {
    n
}

#[cached(result, result_fallback)]
fn without_ttl(n: u64) -> Result<u64, String> {
    Ok(n)
}

#[cached(result, ttl_secs = 60, result_fallback = true)]
fn with_a_value(n: u64) -> Result<u64, String> {
    Ok(n)
}

fn main() {
    without_result(1);
    let _ = without_ttl(1);
    let _ = with_a_value(1);
}
