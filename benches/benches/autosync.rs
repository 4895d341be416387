//! Insert throughput while a save of 1,000,000 entries runs in the background, against insert
//! throughput with no save running. Autosync saves while the program keeps working: the goal
//! is a ratio of at least 0.8. Also: inserts while another cache saves (the same CPU and memory
//! traffic without this cache's locks, which separates lock holding from sharing the machine),
//! and lookups while a save runs.
//!
//! `cargo bench -p benches --bench autosync -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cacheman::Cache;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ENTRIES: u64 = 1_000_000;
const BATCH: u64 = 1_000;

/// A persistent cache of `ENTRIES` entries that saves only when asked.
fn full_cache(dir: &tempfile::TempDir) -> Cache<u64, u64> {
    benches::saved_u64_cache(dir.path(), "big", ENTRIES)
}

/// Overwrites `BATCH` keys spread over the whole cache, so every shard is written.
fn insert_batch(cache: &Cache<u64, u64>, next: &mut u64) {
    for _ in 0..BATCH {
        // A large odd stride visits the keys in a scattered order.
        *next = (*next + 7_919) % ENTRIES;
        black_box(cache.insert(*next, *next));
    }
}

/// Saves `cache` over and over until stopped; counts the saves.
struct BackgroundSaver {
    stop: Arc<AtomicBool>,
    saves: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundSaver {
    fn start(cache: Cache<u64, u64>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let saves = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, saves) = (Arc::clone(&stop), Arc::clone(&saves));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Whole saves (compactions): an append of the inserts would cost little.
                    cache.compact().unwrap();
                    saves.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        // Measure only once the saves are surely under way.
        while saves.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        BackgroundSaver {
            stop,
            saves,
            thread: Some(thread),
        }
    }
}

impl Drop for BackgroundSaver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        eprintln!(
            "  ({} background saves of {ENTRIES} entries)",
            self.saves.load(Ordering::Relaxed)
        );
    }
}

/// Reads `BATCH` keys spread over the whole cache.
fn get_batch(cache: &Cache<u64, u64>, next: &mut u64) {
    for _ in 0..BATCH {
        *next = (*next + 7_919) % ENTRIES;
        black_box(cache.get(next));
    }
}

fn inserts(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let cache = full_cache(&dir);
    let mut group = c.benchmark_group("insert_1000");
    group.throughput(Throughput::Elements(BATCH));

    let mut next = 0;
    group.bench_function("no_save_running", |b| {
        b.iter(|| insert_batch(&cache, &mut next))
    });

    // The save of another cache costs the same CPU and memory traffic but takes none of this
    // cache's locks: the gap between it and the next case is what lock holding costs.
    let other_dir = tempfile::tempdir().unwrap();
    let saver = BackgroundSaver::start(full_cache(&other_dir));
    group.bench_function("save_of_another_1m_cache_running", |b| {
        b.iter(|| insert_batch(&cache, &mut next))
    });
    drop(saver);

    let saver = BackgroundSaver::start(cache.clone());
    group.bench_function("save_of_1m_running", |b| {
        b.iter(|| insert_batch(&cache, &mut next))
    });
    drop(saver);
    group.finish();
}

/// Lookups go on while a save copies a shard: the copy holds only the shard's read lock.
fn lookups(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let cache = full_cache(&dir);
    let mut group = c.benchmark_group("get_1000");
    group.throughput(Throughput::Elements(BATCH));
    let mut next = 0;
    group.bench_function("no_save_running", |b| {
        b.iter(|| get_batch(&cache, &mut next))
    });
    let saver = BackgroundSaver::start(cache.clone());
    group.bench_function("save_of_1m_running", |b| {
        b.iter(|| get_batch(&cache, &mut next))
    });
    drop(saver);
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = inserts, lookups
}
criterion_main!(benches);
