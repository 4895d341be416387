use cacheman::cached;

trait Area {
    fn area(&self, scale: u32) -> u32;
}

struct Square(u32);

// Not supported: the generated `area_cache` and `area_uncached` are not members of the trait.
// Cache an inherent helper that the trait method calls instead.
impl Area for Square {
    #[cached]
    fn area(&self, scale: u32) -> u32 {
        self.0 * self.0 * scale
    }
}

fn main() {
    let _ = Square(2).area(1);
}
