use cacheman::cached;

#[cached(capacty = 10)]
fn misspelt(n: u64) -> u64 {
    n
}

#[cached(lifetime = 10)]
fn unknown(n: u64) -> u64 {
    n
}

fn main() {
    misspelt(1);
    unknown(1);
}
