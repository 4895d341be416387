//! Workload 3 of BENCHMARKS.md, measured so that the ratio means something on a shared machine:
//! misses of distinct keys (each runs the body and inserts) on two threads against one thread,
//! in windows of `WINDOW_MS` taken in turn, each starting from an
//! empty cache. A slow minute of the host then slows both sides alike, where two criterion
//! benchmarks run apart each take it alone (they still run, in `benches/misses.rs`, with the
//! `cached` crate beside them). The default, persistent `#[cached]`, which also journals every
//! insert, takes its windows in the same rounds (the order of the four windows rotates); the
//! goal is judged on the memory cache (`persistent = false`).
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

/// The default `#[cached]`: persistent (autosync off, see `benches::without_autosync`).
#[cacheman::cached]
fn mix_persistent(n: u64) -> u64 {
    n.rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15
}

/// One of the caches measured: its function, and what empties its cache.
struct Contender {
    mix: fn(u64) -> u64,
    clear: fn(),
}

const MEMORY: Contender = Contender {
    mix,
    clear: || mix_cache().clear(),
};
const PERSISTENT: Contender = Contender {
    mix: mix_persistent,
    clear: || mix_persistent_cache().clear(),
};

/// Misses on `threads` threads for `WINDOW_MS`, each thread on keys of its own; returns the
/// misses per second over all threads.
fn window(contender: &Contender, threads: usize, round: u64) -> f64 {
    let mix = contender.mix;
    (contender.clear)();
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

/// One contender's windows: misses per second on one thread and on two, summed over the
/// rounds, and each round's ratio.
#[derive(Default)]
struct Scaling {
    one: f64,
    two: f64,
    ratios: Vec<f64>,
}

impl Scaling {
    /// The JSON fields of this contender, their names starting with `prefix`.
    fn json(mut self, prefix: &str, rounds: u64) -> String {
        self.ratios.sort_by(f64::total_cmp);
        let n = rounds as f64;
        format!(
            "\"{prefix}one_thread_ns_per_miss\": {:.1}, \
             \"{prefix}two_threads_ns_per_miss\": {:.1}, \"{prefix}ratio\": {:.3}, \
             \"{prefix}ratio_median\": {:.3}, \"{prefix}ratio_min\": {:.3}, \
             \"{prefix}ratio_max\": {:.3}",
            1e9 / (self.one / n),
            1e9 / (self.two / n),
            self.two / self.one,
            self.ratios[self.ratios.len() / 2],
            self.ratios[0],
            self.ratios[self.ratios.len() - 1],
        )
    }
}

fn main() {
    let rounds = benches::count_arg(30) as u64;
    let _dir = benches::private_cache_dir();
    benches::without_autosync();
    let contenders = [MEMORY, PERSISTENT];
    // One untimed window of each, so all start warm.
    for contender in &contenders {
        window(contender, 1, 0);
        window(contender, 2, 0);
    }
    let mut scaling = [Scaling::default(), Scaling::default()];
    for round in 1..=rounds {
        // The four windows of a round, one and two threads of each cache, in an order that
        // rotates from round to round.
        let mut this_round = [[0.0; 2]; 2];
        for i in 0..4 {
            let which = (round as usize + i) % 4;
            let (contender, threads) = (which / 2, which % 2 + 1);
            this_round[contender][threads - 1] = window(&contenders[contender], threads, round);
        }
        for (total, [a, b]) in scaling.iter_mut().zip(this_round) {
            total.one += a;
            total.two += b;
            total.ratios.push(b / a);
        }
    }
    assert_eq!(mix_cache().stats().hits, 0, "every call was a miss");
    assert_eq!(
        mix_persistent_cache().stats().hits,
        0,
        "every call was a miss"
    );
    // Time per miss of the persistent cache over the memory cache's, on one thread.
    let persistent_over_memory = scaling[0].one / scaling[1].one;
    let [memory, persistent] = scaling;
    println!(
        "{{\"rounds\": {rounds}, \"window_ms\": {WINDOW_MS}, {}, {}, \
         \"persistent_over_memory_1_thread\": {persistent_over_memory:.3}}}",
        memory.json("", rounds),
        persistent.json("persistent_", rounds),
    )
}
