use cacheman::cached;

#[cached(name = "a", capacity = 1, name = "b")]
fn twice(n: u64) -> u64 {
    n
}

fn main() {
    twice(1);
}
