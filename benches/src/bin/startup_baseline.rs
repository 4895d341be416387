//! The baseline of the start-up benchmark: the same work as `startup`, without cacheman.

fn main() {
    let first = std::hint::black_box(7u64).wrapping_mul(500);
    let hit = std::hint::black_box(7u64).wrapping_mul(500);
    assert_eq!(first, hit);
}
