//! The cost of recording per-entry dependencies (issue 13): a miss whose body reads 10 cached
//! inputs against a miss whose body reads none, both on the default (persistent) `#[cached]`
//! configuration, in alternating windows of `WINDOW_MS` (the order flips every round), each
//! from an empty cache of fresh keys. Also the graph file's bytes per recorded edge.
//!
//! `cargo run --release -p benches --bin miss_inputs [ROUNDS]` prints one JSON object.

use std::hint::black_box;
use std::time::{Duration, Instant};

const WINDOW_MS: u64 = 40;
const INPUTS: u64 = 10;

#[cacheman::cached]
fn input(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cacheman::cached]
fn reads_none(n: u64) -> u64 {
    n.rotate_left(17)
}

#[cacheman::cached]
fn reads_ten(n: u64) -> u64 {
    (0..INPUTS).map(input).fold(n, u64::wrapping_add)
}

/// Misses for `WINDOW_MS` on fresh keys; returns nanoseconds per miss.
fn window(miss: fn(u64) -> u64, clear: fn(), round: u64) -> f64 {
    clear();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(WINDOW_MS) {
        for _ in 0..64 {
            black_box(miss((round << 40) | n));
            n += 1;
        }
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let rounds = benches::count_arg(30) as u64;
    let dir = benches::private_cache_dir();
    let none = (
        reads_none as fn(u64) -> u64,
        (|| reads_none_cache().clear()) as fn(),
    );
    let ten = (
        reads_ten as fn(u64) -> u64,
        (|| reads_ten_cache().clear()) as fn(),
    );
    // Warm: the inputs are computed once, and both paths have run.
    window(none.0, none.1, 0);
    window(ten.0, ten.1, 0);
    let (mut a, mut b, mut ratios) = (0.0, 0.0, Vec::new());
    for round in 1..=rounds {
        let (x, y) = if round % 2 == 0 {
            let x = window(none.0, none.1, round);
            (x, window(ten.0, ten.1, round))
        } else {
            let y = window(ten.0, ten.1, round);
            (window(none.0, none.1, round), y)
        };
        a += x;
        b += y;
        ratios.push(y / x);
    }
    ratios.sort_by(f64::total_cmp);
    // Bytes per edge in the graph file: 1,000 entries of 10 inputs each.
    reads_ten_cache().clear();
    for n in 0..1_000 {
        reads_ten(n);
    }
    reads_ten_cache().save().unwrap();
    let graph = dir.path().join("general_cache/.graph.deps");
    let bytes = std::fs::metadata(graph).map_or(0, |m| m.len());
    let n = rounds as f64;
    println!(
        "{{\"rounds\": {rounds}, \"window_ms\": {WINDOW_MS}, \"miss_reading_none_ns\": {:.1}, \
         \"miss_reading_ten_ns\": {:.1}, \"ratio\": {:.3}, \"ratio_median\": {:.3}, \
         \"graph_file_bytes_per_edge\": {:.1}}}",
        a / n,
        b / n,
        b / a,
        ratios[ratios.len() / 2],
        bytes as f64 / (1_000 * INPUTS) as f64,
    );
}
