//! Methods and associated functions, in plain and generic `impl` blocks.
#![deny(warnings)]

use std::marker::PhantomData;

use cacheman::cached;

struct Grid {
    width: u32,
}

impl Grid {
    #[cached(persistent = false)]
    fn area(&self, height: u32) -> u32 {
        self.width * height
    }

    #[cached(persistent = false)]
    fn cells(width: u32, height: u32) -> u32 {
        width * height
    }

    #[cached(persistent = false, key = (self.width, height), key_type = (u32, u32))]
    fn perimeter(&mut self, height: u32) -> u32 {
        self.width += 0;
        2 * (self.width + height)
    }

    #[cached(persistent = false, depends_on = Grid::cells)]
    fn half(self, height: u32) -> u32 {
        Grid::cells(self.width, height) / 2
    }
}

struct Tagged<T>(PhantomData<T>);

impl<T> Tagged<T> {
    #[cached(persistent = false)]
    fn doubled(&self, n: u64) -> u64 {
        n * 2
    }
}

fn main() {
    let mut grid = Grid { width: 3 };
    assert_eq!(grid.area(2), 6);
    assert_eq!(Grid::cells(3, 2), 6);
    assert_eq!(grid.perimeter(2), 10);
    assert_eq!(Grid::area_cache().len(), 1);
    assert_eq!(Grid::area_uncached(&grid, 4), 12);
    assert_eq!(grid.half(2), 3);
    assert_eq!(Tagged::<u8>(PhantomData).doubled(2), 4);
    assert_eq!(Tagged::<String>(PhantomData).doubled(2), 4);
    assert_eq!(Tagged::<u8>::doubled_cache().len(), 1, "one cache for every T");
}
