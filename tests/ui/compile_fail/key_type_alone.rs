use cacheman::cached;

#[cached(key_type = String)]
fn untyped(a: u32) -> u32 {
    a
}

#[cached(key = format!("{a}-{b}"))]
fn needs_type(a: u32, b: u32) -> u32 {
    a + b
}

fn main() {
    untyped(1);
    needs_type(1, 2);
}
