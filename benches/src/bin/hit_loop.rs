//! One `#[cached(persistent = false)]` function hit in a loop over 1,024 warm `u64` keys, and
//! nothing else: a program to count a hit's instructions with callgrind, which needs no
//! hardware counters and does not vary with the host's load. Per-entry dependencies (issue 13)
//! were judged with it:
//!
//! ```text
//! cargo build --release -p benches --bin hit_loop
//! valgrind --tool=callgrind target/release/hit_loop 0      # start-up alone
//! valgrind --tool=callgrind target/release/hit_loop 2000   # + 2,048,000 hits
//! ```
//!
//! (Instructions per hit = difference / 2,048,000.) To compare with another commit, build the
//! same file against that commit's `cacheman`.

use std::hint::black_box;

#[cacheman::cached(persistent = false)]
fn square(n: u64) -> u64 {
    n.wrapping_mul(n)
}

fn main() {
    let rounds = benches::count_arg(20_000) as u64;
    let _dir = benches::private_cache_dir();
    for k in 0..1024 {
        square(k);
    }
    let mut sum = 0u64;
    for _ in 0..rounds {
        for k in 0..1024 {
            sum = sum.wrapping_add(square(black_box(k)));
        }
    }
    println!("{sum}");
}
