use cacheman::cached;

#[cached]
fn evens(n: u32) -> impl Iterator<Item = u32> {
    (0..n).filter(|k| k % 2 == 0)
}

fn main() {
    let _ = evens(4);
}
