use cacheman::cached;

#[cached]
const fn constant(n: u64) -> u64 {
    n
}

fn main() {
    constant(1);
}
