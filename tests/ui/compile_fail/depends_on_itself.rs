use cacheman::cached;

#[cached(name = "a", depends_on = "a")]
fn by_name(x: u32) -> u32 {
    x
}

#[cached(depends_on = by_path)]
fn by_path(x: u32) -> u32 {
    x
}

fn main() {}
