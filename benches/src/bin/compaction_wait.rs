//! Workload 10 of BENCHMARKS.md, the background compaction (issue 16): how long a save of
//! 10 changed entries takes while a compaction of a 1,000,000-entry cache (`u64` → 100-byte
//! `Vec<u8>`, the save workload's) runs, against the same save with no compaction running.
//! Three figures, measured in turn in each of `ROUNDS` rounds; medians:
//!
//! - **alone**: the save with nothing else running.
//! - **during a background compaction**: a save appends its first frames after a journal
//!   larger than the snapshot (1,000,000 entries rewritten), which starts a compaction on a
//!   `cacheman-compact` thread; 30 ms later (the compaction copies and writes for some
//!   hundreds of ms) the timed save starts.
//! - **during `Cache::compact()`**: the same save, 30 ms after another thread called
//!   `compact()`, which holds the save lock and the file lock throughout, as every
//!   compaction did before this one (the build before, c75596e, ran its background
//!   compactions this way): the wait a save had then.
//!
//! Goal: a save during a background compaction takes at most 1/10 of one during `compact()`
//! (which waits for the whole rewrite): it does not wait for the compaction. It is still
//! slower than alone: it shares the cores with the compaction's copy, and its fsync shares
//! the disk with the compaction's writes.
//!
//! `cargo run --release -p benches --bin compaction_wait [ROUNDS]` prints one JSON object.

use std::time::Duration;

use benches::{compaction_running, middle, millis_of, wait_for_compactions};
use cacheman::{AutoSync, CacheManager, CacheOptions};

const ENTRIES: u64 = 1_000_000;

/// How long after a compaction starts the timed save starts: well inside the compaction,
/// which takes hundreds of milliseconds for this cache.
const INTO_THE_COMPACTION: Duration = Duration::from_millis(30);

fn main() {
    let rounds = benches::count_arg(5);
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("bench", dir.path());
    let options = CacheOptions::new().autosync(AutoSync::disabled());
    let cache = manager
        .register_custom_cache::<u64, Vec<u8>>("big", options)
        .unwrap();
    cache.extend((0..ENTRIES).map(|k| (k, benches::value_of(k))));
    cache.compact().unwrap();
    let change = |round: u64| {
        for k in 0..10 {
            cache.insert(k * 1_000 + round, benches::value_of(round + k));
        }
    };
    let (mut alone, mut background, mut blocking) = (Vec::new(), Vec::new(), Vec::new());
    let mut overlapped = 0;
    for round in 0..rounds as u64 {
        // Alone (after an untimed save that starts the journal).
        change(round);
        cache.save().unwrap();
        change(round + 1);
        alone.push(millis_of(|| cache.save().unwrap()));

        // During a background compaction: every entry rewritten makes the journal larger
        // than the snapshot, and its save starts the compaction.
        cache.extend((0..ENTRIES).map(|k| (k, benches::value_of(k + round + 1))));
        cache.save().unwrap();
        std::thread::sleep(INTO_THE_COMPACTION);
        let running = compaction_running();
        change(round + 2);
        background.push(millis_of(|| cache.save().unwrap()));
        if running && compaction_running() {
            overlapped += 1;
        }
        wait_for_compactions();

        // During compact() on another thread: the whole blocking rewrite.
        change(round + 3);
        std::thread::scope(|scope| {
            scope.spawn(|| cache.compact().unwrap());
            std::thread::sleep(INTO_THE_COMPACTION);
            change(round + 4);
            blocking.push(millis_of(|| cache.save().unwrap()));
        });
    }
    let (alone, background, blocking) = (middle(alone), middle(background), middle(blocking));
    println!(
        "{{\"entries\": {ENTRIES}, \"rounds\": {rounds}, \"save_alone_ms\": {alone:.2}, \
         \"save_during_background_compaction_ms\": {background:.2}, \
         \"save_during_compact_ms\": {blocking:.2}, \
         \"background_over_alone\": {:.2}, \"background_over_compact\": {:.4}, \
         \"saves_that_overlapped_the_background_compaction\": {overlapped}}}",
        background / alone,
        background / blocking,
    );
}
