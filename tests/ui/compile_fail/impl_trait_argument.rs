use cacheman::cached;

#[cached]
fn length(text: impl AsRef<str>) -> usize {
    text.as_ref().len()
}

fn main() {
    length("abc");
}
