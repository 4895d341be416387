use std::fmt::Display;

use cacheman::cached;

#[cached]
fn render(id: u32, item: &dyn Display) -> String {
    format!("{id}: {item}")
}

// Leaving the trait object out of the key is fine.
#[cached(key = id)]
fn render_by_id(id: u32, item: &dyn Display) -> String {
    format!("{id}: {item}")
}

fn main() {
    render(1, &2);
    render_by_id(1, &2);
}
