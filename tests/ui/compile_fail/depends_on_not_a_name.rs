use cacheman::cached;

#[cached(depends_on = 5)]
fn processed(id: u32) -> u64 {
    u64::from(id)
}

fn main() {
    processed(1);
}
