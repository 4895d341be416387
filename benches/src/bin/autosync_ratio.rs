//! Workload 5 of BENCHMARKS.md, measured so that the ratio means something on a shared machine:
//! insert throughput while a 1,000,000-entry save runs, against insert throughput with no save
//! running, in alternating windows of `WINDOW_MS` (the order flips every round). A slow minute
//! of the host then slows both sides alike, where two criterion benchmarks run a minute apart
//! each take it alone (they still run, in `benches/autosync.rs`, for the figures).
//!
//! `cargo run --release -p benches --bin autosync_ratio [ROUNDS]` prints one JSON object.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ENTRIES: u64 = 1_000_000;
const BATCH: u64 = 1_000;
const WINDOW_MS: u64 = 100;

/// Switches a thread that saves the cache over and over on and off.
struct Saver {
    active: AtomicBool,
    /// Whether the saver sits between saves (set only while it is switched off).
    idle: AtomicBool,
    stop: AtomicBool,
    saves: AtomicU64,
}

impl Saver {
    fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::SeqCst);
        // Off: wait for the save under way to end. On: wait for a save to begin.
        while self.idle.load(Ordering::SeqCst) == active {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Inserts for `WINDOW_MS`; returns (inserts, elapsed).
fn insert_window(cache: &cacheman::Cache<u64, u64>, next: &mut u64) -> (u64, Duration) {
    let start = Instant::now();
    let mut inserts = 0;
    while start.elapsed() < Duration::from_millis(WINDOW_MS) {
        for _ in 0..BATCH {
            // A large odd stride visits the keys in a scattered order, over every shard.
            *next = (*next + 7_919) % ENTRIES;
            black_box(cache.insert(*next, *next));
        }
        inserts += BATCH;
    }
    (inserts, start.elapsed())
}

fn main() {
    let rounds = benches::count_arg(40);
    let dir = tempfile::tempdir().unwrap();
    let cache = benches::saved_u64_cache(dir.path(), "big", ENTRIES);

    let saver = Arc::new(Saver {
        active: AtomicBool::new(false),
        idle: AtomicBool::new(true),
        stop: AtomicBool::new(false),
        saves: AtomicU64::new(0),
    });
    let thread = {
        let (saver, cache) = (Arc::clone(&saver), cache.clone());
        std::thread::spawn(move || {
            while !saver.stop.load(Ordering::SeqCst) {
                if !saver.active.load(Ordering::SeqCst) {
                    saver.idle.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                saver.idle.store(false, Ordering::SeqCst);
                // Whole saves (compactions): an append of the inserts would cost little.
                cache.compact().unwrap();
                saver.saves.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    let mut next = 0;
    // One untimed round of each, so both start warm.
    insert_window(&cache, &mut next);
    let (mut quiet, mut busy) = ((0, Duration::ZERO), (0, Duration::ZERO));
    let mut ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut measure = |active: bool| {
            saver.set_active(active);
            insert_window(&cache, &mut next)
        };
        let (q, b) = if round % 2 == 0 {
            let q = measure(false);
            (q, measure(true))
        } else {
            let b = measure(true);
            (measure(false), b)
        };
        quiet = (quiet.0 + q.0, quiet.1 + q.1);
        busy = (busy.0 + b.0, busy.1 + b.1);
        let rate = |(n, t): (u64, Duration)| n as f64 / t.as_secs_f64();
        ratios.push(rate(b) / rate(q));
    }
    saver.set_active(false);
    saver.stop.store(true, Ordering::SeqCst);
    thread.join().unwrap();

    ratios.sort_by(f64::total_cmp);
    let per_insert_ns = |(n, t): (u64, Duration)| t.as_nanos() as f64 / n as f64;
    let (quiet_ns, busy_ns) = (per_insert_ns(quiet), per_insert_ns(busy));
    println!(
        "{{\"rounds\": {rounds}, \"window_ms\": {WINDOW_MS}, \"saves\": {}, \
         \"quiet_ns_per_insert\": {quiet_ns:.1}, \"busy_ns_per_insert\": {busy_ns:.1}, \
         \"ratio\": {:.3}, \"ratio_median\": {:.3}, \"ratio_min\": {:.3}, \"ratio_max\": {:.3}}}",
        saver.saves.load(Ordering::SeqCst),
        quiet_ns / busy_ns,
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1],
    );
}
