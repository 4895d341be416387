// The tests crate builds cacheman without its `redis` feature (unless run with
// `--features redis`, which the `ui` test is not: see .ci/run).
use cacheman::cached;

#[cached(store = "redis")]
fn shared(n: u64) -> u64 {
    n
}

fn main() {
    shared(1);
}
