use cacheman::cached;

#[cached(name = "../escape", manager = ".hidden", depends_on = "a/b")]
fn escape(n: u64) -> u64 {
    n
}

fn main() {
    escape(1);
}
