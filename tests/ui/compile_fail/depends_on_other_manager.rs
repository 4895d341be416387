use cacheman::cached;

#[cached(manager = "one")]
fn raw(id: u32) -> u64 {
    u64::from(id)
}

#[cached(manager = "two", depends_on = raw)]
fn processed(id: u32) -> u64 {
    raw(id) * 5
}

fn main() {
    processed(1);
}
