//! Workload 10's peer (issue 16): cacheman's journaled file cache against what a user would
//! install today for a memo that survives the process, the `cached` crate's latest release
//! (4.x) and its `RedbCache` (an embedded redb database; `cached` 0.56's sled `DiskCache` is
//! workload 4's peer). One cache of 1,000,000 entries each (`u64` → 100-byte `Vec<u8>`, the
//! save workload's), four figures, each pair measured in turn in this one run:
//!
//! - **10 changes made durable**: cacheman inserts 10 entries and `save()`s (one journal
//!   frame, fdatasync), against `RedbCache` with its default `durable(true)` (each `cache_set`
//!   one transaction committed with an fsync), then against a `durable(false)` `RedbCache`
//!   whose 10 `cache_set`s are followed by one `flush()` (one fsync for the 10, the cheapest
//!   durable batch `cached` offers). Medians in ms, and bytes handed to `write` per batch.
//! - **warm hit**: 1,000 lookups of present keys in a scattered order, ns per lookup
//!   (`RedbCache` reads its database, decodes with rmp-serde; cacheman reads its map).
//! - **restart**: what a new process pays before its first 1,000 hits: cacheman loads the
//!   whole file (`reload`), `RedbCache` opens its database and reads those keys from it.
//!
//! `cargo run --release -p benches --bin journal_peer [ROUNDS]` prints one JSON object.

use std::path::Path;

use benches::{bytes_written, middle, millis_of};
use cached4::ConcurrentCached;
use cached4::stores::RedbCache;
use cacheman::{AutoSync, Cache, CacheManager, CacheOptions};

const ENTRIES: u64 = 1_000_000;
const LOOKUPS: u64 = 1_000;

/// Keys spread over the whole cache, in a scattered order.
fn scattered(round: u64) -> impl Iterator<Item = u64> {
    (0..LOOKUPS).map(move |i| ((i + round * LOOKUPS) * 7_919 + 13) % ENTRIES)
}

fn cacheman_cache(dir: &Path) -> (CacheManager, Cache<u64, Vec<u8>>) {
    let manager = CacheManager::new("bench", dir);
    let options = CacheOptions::new().autosync(AutoSync::disabled());
    let cache = manager.register_custom_cache("big", options).unwrap();
    cache.extend((0..ENTRIES).map(|k| (k, benches::value_of(k))));
    cache.compact().unwrap();
    (manager, cache)
}

fn redb(dir: &Path, durable: bool) -> RedbCache<u64, Vec<u8>> {
    RedbCache::builder("big")
        .disk_dir(dir)
        .durable(durable)
        .build()
        .expect("a redb cache in a fresh directory")
}

/// Fills a `RedbCache` with the entries, without an fsync per entry, then one.
fn filled_redb(dir: &Path) -> RedbCache<u64, Vec<u8>> {
    let fill = redb(dir, false);
    for k in 0..ENTRIES {
        fill.cache_set(k, benches::value_of(k)).unwrap();
    }
    fill.flush().unwrap();
    fill
}

/// Medians of `a` and `b` run in turn (the order flips each round), and the bytes each wrote
/// per run.
fn in_turn(
    rounds: u64,
    mut a: impl FnMut(u64),
    mut b: impl FnMut(u64),
) -> ((f64, u64), (f64, u64)) {
    let (mut times_a, mut times_b, mut bytes_a, mut bytes_b) = (vec![], vec![], 0, 0);
    let measure = |f: &mut dyn FnMut(u64), round, times: &mut Vec<f64>, bytes: &mut u64| {
        let before = bytes_written();
        times.push(millis_of(|| f(round)));
        *bytes += bytes_written() - before;
    };
    for round in 0..rounds {
        if round % 2 == 0 {
            measure(&mut a, round, &mut times_a, &mut bytes_a);
            measure(&mut b, round, &mut times_b, &mut bytes_b);
        } else {
            measure(&mut b, round, &mut times_b, &mut bytes_b);
            measure(&mut a, round, &mut times_a, &mut bytes_a);
        }
    }
    (
        (middle(times_a), bytes_a / rounds),
        (middle(times_b), bytes_b / rounds),
    )
}

fn main() {
    let rounds = benches::count_arg(11) as u64;
    let (ours_dir, theirs_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_manager, ours) = cacheman_cache(ours_dir.path());
    // Keys past the filled ones, so each round's 10 entries are new in both caches.
    let change = |round: u64| (0..10).map(move |k| ENTRIES + round * 10 + k);
    let save_ours = |round| {
        ours.extend(change(round).map(|k| (k, benches::value_of(k))));
        ours.save().unwrap();
    };

    let theirs = filled_redb(theirs_dir.path());
    drop(theirs);
    let durable = redb(theirs_dir.path(), true);
    let ((ours_ms, ours_bytes), (durable_ms, durable_bytes)) =
        in_turn(rounds, save_ours, |round| {
            for k in change(round + rounds) {
                durable.cache_set(k, benches::value_of(k)).unwrap();
            }
        });
    drop(durable);
    let batched = redb(theirs_dir.path(), false);
    let ((ours2_ms, _), (batched_ms, batched_bytes)) = in_turn(
        rounds,
        |round| save_ours(round + 2 * rounds),
        |round| {
            for k in change(round + 3 * rounds) {
                batched.cache_set(k, benches::value_of(k)).unwrap();
            }
            batched.flush().unwrap();
        },
    );

    let hit_ns = |ms: f64| ms * 1e6 / LOOKUPS as f64;
    let ((ours_hit, _), (theirs_hit, _)) = in_turn(
        rounds,
        |round| {
            for k in scattered(round) {
                assert!(ours.get(&k).is_some());
            }
        },
        |round| {
            for k in scattered(round) {
                assert!(batched.cache_get(&k).unwrap().is_some());
            }
        },
    );
    drop(batched);

    let mut reopened = None;
    let ((ours_restart, _), (theirs_restart, _)) = in_turn(
        rounds.min(5),
        |round| {
            ours.reload().unwrap();
            for k in scattered(round) {
                assert!(ours.get(&k).is_some());
            }
        },
        |round| {
            drop(reopened.take());
            let opened = redb(theirs_dir.path(), false);
            for k in scattered(round) {
                assert!(opened.cache_get(&k).unwrap().is_some());
            }
            reopened = Some(opened);
        },
    );

    println!(
        "{{\"rounds\": {rounds}, \"entries\": {ENTRIES}, \
         \"save_10_ms\": {ours_ms:.3}, \"save_10_bytes\": {ours_bytes}, \
         \"redb_durable_10_sets_ms\": {durable_ms:.3}, \"redb_durable_10_sets_bytes\": {durable_bytes}, \
         \"durable_over_ours\": {:.2}, \
         \"save_10_ms_second_batch\": {ours2_ms:.3}, \
         \"redb_10_sets_flush_ms\": {batched_ms:.3}, \"redb_10_sets_flush_bytes\": {batched_bytes}, \
         \"flush_over_ours\": {:.2}, \
         \"hit_ns\": {:.1}, \"redb_hit_ns\": {:.1}, \"redb_hit_over_ours\": {:.1}, \
         \"restart_ms\": {ours_restart:.1}, \"redb_restart_ms\": {theirs_restart:.1}, \
         \"restart_over_redb\": {:.1}}}",
        durable_ms / ours_ms,
        batched_ms / ours2_ms,
        hit_ns(ours_hit),
        hit_ns(theirs_hit),
        theirs_hit / ours_hit,
        ours_restart / theirs_restart,
    );
}
