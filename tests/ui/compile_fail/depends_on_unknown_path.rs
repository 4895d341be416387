use cacheman::cached;

#[cached]
fn raw(id: u32) -> u64 {
    u64::from(id)
}

#[cached(depends_on = rwa)]
fn processed(id: u32) -> u64 {
    raw(id) * 5
}

fn main() {
    processed(1);
}
