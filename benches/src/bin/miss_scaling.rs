//! Workload 3 of BENCHMARKS.md, measured so that the ratio means something on a shared machine:
//! misses of distinct keys (each runs the body and inserts) on two threads against one thread,
//! in alternating windows of `WINDOW_MS` (the order flips every round), each starting from an
//! empty cache. A slow minute of the host then slows both sides alike, where two criterion
//! benchmarks run apart each take it alone (they still run, in `benches/misses.rs`, with the
//! `cached` crate beside them).
//!
//! `cargo run --release -p benches --bin miss_scaling [ROUNDS]` prints one JSON object.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WINDOW_MS: u64 = 100;
const BATCH: u64 = 256;

#[cacheman::cached(persistent = false)]
fn mix(n: u64) -> u64 {
    n.rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15
}

/// Misses on `threads` threads for `WINDOW_MS`, each thread on keys of its own; returns the
/// misses per second over all threads.
fn window(threads: usize, round: u64) -> f64 {
    mix_cache().clear();
    let stop = AtomicBool::new(false);
    let misses = AtomicU64::new(0);
    let start = std::sync::Barrier::new(threads + 1);
    let elapsed = std::thread::scope(|scope| {
        for t in 0..threads as u64 {
            let (stop, misses, start) = (&stop, &misses, &start);
            scope.spawn(move || {
                // Keys never repeat: thread, round and a counter each own their bits.
                let base = (t << 56) | (round << 36);
                let mut i = 0;
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..BATCH {
                        black_box(mix(base | i));
                        i += 1;
                    }
                }
                misses.fetch_add(i, Ordering::Relaxed);
            });
        }
        start.wait();
        let began = Instant::now();
        std::thread::sleep(Duration::from_millis(WINDOW_MS));
        stop.store(true, Ordering::Relaxed);
        began.elapsed()
    });
    misses.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}

fn main() {
    let rounds = benches::count_arg(30) as u64;
    let _dir = benches::private_cache_dir();
    // One untimed window of each, so both start warm.
    window(1, 0);
    window(2, 0);
    let (mut one, mut two) = (0.0, 0.0);
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let (a, b) = if round % 2 == 0 {
            let a = window(1, round);
            (a, window(2, round))
        } else {
            let b = window(2, round);
            (window(1, round), b)
        };
        one += a;
        two += b;
        ratios.push(b / a);
    }
    assert_eq!(mix_cache().stats().hits, 0, "every call was a miss");
    ratios.sort_by(f64::total_cmp);
    let n = rounds as f64;
    println!(
        "{{\"rounds\": {rounds}, \"window_ms\": {WINDOW_MS}, \
         \"one_thread_ns_per_miss\": {:.1}, \"two_threads_ns_per_miss\": {:.1}, \
         \"ratio\": {:.3}, \"ratio_median\": {:.3}, \"ratio_min\": {:.3}, \"ratio_max\": {:.3}}}",
        1e9 / (one / n),
        1e9 / (two / n),
        two / one,
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
    );
}
