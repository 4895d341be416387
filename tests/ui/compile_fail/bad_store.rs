use cacheman::cached;

#[cached(store = "redsi")]
fn misspelt(n: u64) -> u64 {
    n
}

#[cached(store = redis)]
fn not_a_string(n: u64) -> u64 {
    n
}

#[cached(store = "redis", persistent = false)]
fn in_memory_on_redis(n: u64) -> u64 {
    n
}

#[cached(stor = "redis")]
fn unknown_argument(n: u64) -> u64 {
    n
}

fn main() {
    misspelt(1);
    not_a_string(1);
    in_memory_on_redis(1);
    unknown_argument(1);
}
