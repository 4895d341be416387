use cacheman::cached;

#[cached(refresh = true)]
fn idle(n: u64) -> u64 {
    n
}

#[cached(ttl_secs = 60, refresh = "yes")]
fn wrong_type(n: u64) -> u64 {
    n
}

fn main() {
    idle(1);
    wrong_type(1);
}
