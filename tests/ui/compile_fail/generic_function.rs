use cacheman::cached;

#[cached]
fn largest<T: Ord + Clone>(items: Vec<T>) -> Option<T> {
    items.into_iter().max()
}

fn main() {
    largest(vec![1, 2]);
}
