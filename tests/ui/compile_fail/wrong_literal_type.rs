use cacheman::cached;

#[cached(name = 5, capacity = "10", persistent = 1, ttl_secs = -3, version = 1.5)]
fn typed(n: u64) -> u64 {
    n
}

fn main() {
    typed(1);
}
