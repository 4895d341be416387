use cacheman::cached;

#[derive(Clone)]
struct Point(u32);

impl Point {
    #[cached]
    fn origin(n: u32) -> Self {
        Point(n)
    }

    #[cached(depends_on = Self::origin)]
    fn x(n: u32) -> u32 {
        n
    }
}

fn main() {
    let _ = Point::origin(1).0 + Point::x(1);
}
