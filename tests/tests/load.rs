//! Load: 8 threads doing mixed operations (get, insert, get_or_insert_with, remove, and
//! invalidation of a root with a dependent) while autosync's background thread saves every
//! cache whenever it has a change, every 10 ms. No deadlock (a watchdog ends the process if the run exceeds a generous bound), no
//! lost insert or removal, and the statistics agree with what the threads did.
//!
//! `CACHEMAN_LOAD_OPS` sets the operations per thread: 50,000 by default in a debug build,
//! 1,000,000 in a release build (`cargo test --release -p tests --test load`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cacheman::{AutoSync, Cache, CacheManager};
use tests::support::XorShift;

const THREADS: u64 = 8;
/// Keys each thread owns in `main` (nobody else touches them, so each thread knows exactly
/// what they must hold).
const OWN_KEYS: u64 = 1024;
/// Keys every thread asks for with `get_or_insert_with` (single-flight under contention).
const SHARED_KEYS: u64 = 4096;
/// One `root`/`edge` operation in this many invalidates `root` (and so `edge`); each
/// invalidation writes two files.
const INVALIDATE_ONE_IN: u64 = 1024;

fn ops_per_thread() -> u64 {
    let default = if cfg!(debug_assertions) {
        50_000
    } else {
        1_000_000
    };
    std::env::var("CACHEMAN_LOAD_OPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// The value every computation of shared key `key` must produce.
fn shared_value(key: u64) -> u64 {
    key.wrapping_mul(key) ^ 0x5eed
}

fn own_key(thread: u64, i: u64) -> u64 {
    (thread + 1) << 32 | i
}

/// What one worker did, to be checked against the cache and its statistics.
#[derive(Default)]
struct Tally {
    /// Own keys as they must be now.
    model: HashMap<u64, u64>,
    gets: u64,
    get_hits: u64,
    inserts: u64,
    computes_called: u64,
    invalidations: u64,
}

struct Caches {
    manager: CacheManager,
    main: Cache<u64, u64>,
    root: Cache<u64, u64>,
    edge: Cache<u64, u64>,
}

fn open_caches(dir: &std::path::Path) -> Caches {
    let manager = CacheManager::new("load", dir);
    // Due as soon as there is a change: the background thread saves on every tick.
    manager.set_autosync(AutoSync::disabled().save_point(Duration::ZERO, 1));
    manager.register_dependent_cache("root", "edge").unwrap();
    Caches {
        main: manager.register_cache("main").unwrap(),
        root: manager.register_cache("root").unwrap(),
        edge: manager.register_cache("edge").unwrap(),
        manager,
    }
}

fn work(caches: &Caches, thread: u64, ops: u64, computations: &AtomicU64) -> Tally {
    let mut tally = Tally::default();
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15 ^ (thread + 1).wrapping_mul(0xff51_afd7));
    for _ in 0..ops {
        let roll = random.next_u64();
        let own = own_key(thread, random.next_u64() % OWN_KEYS);
        match roll % 100 {
            0..30 => {
                tally.gets += 1;
                let got = caches.main.get(&own);
                assert_eq!(got, tally.model.get(&own).copied(), "key {own:#x}");
                tally.get_hits += u64::from(got.is_some());
            }
            30..50 => {
                let value = random.next_u64();
                tally.inserts += 1;
                let before = caches.main.insert(own, value);
                assert_eq!(before, tally.model.insert(own, value), "key {own:#x}");
            }
            50..62 => {
                let removed = caches.main.remove(&own);
                assert_eq!(removed, tally.model.remove(&own), "key {own:#x}");
            }
            62..85 => {
                let key = random.next_u64() % SHARED_KEYS;
                tally.computes_called += 1;
                let value = caches.main.get_or_insert_with(key, || {
                    computations.fetch_add(1, Ordering::Relaxed);
                    shared_value(key)
                });
                assert_eq!(value, shared_value(key), "shared key {key}");
            }
            _ => {
                // root and its dependent edge: values derived from root, cleared with it.
                let key = random.next_u64() % OWN_KEYS;
                let pick = random.next_u64();
                if pick.is_multiple_of(INVALIDATE_ONE_IN) {
                    tally.invalidations += 1;
                    caches.manager.invalidate_cache("root").unwrap();
                } else if pick.is_multiple_of(2) {
                    caches.root.insert(key, key + 1);
                } else {
                    let derived = caches
                        .edge
                        .get_or_insert_with(key, || caches.root.get(&key).map_or(0, |v| v * 2));
                    assert!(
                        derived == 0 || derived == (key + 1) * 2,
                        "edge {key}: {derived}"
                    );
                }
            }
        }
    }
    tally
}

#[test]
fn eight_threads_of_mixed_operations_while_saving() {
    let ops = ops_per_thread();
    // Generous: the release run of 8 x 1,000,000 takes seconds. Waiting on a channel with a
    // timeout, rather than hanging forever, turns a deadlock into a failure.
    let bound = Duration::from_secs(600);
    let (done, finished) = mpsc::channel::<()>();
    thread::spawn(move || {
        // Disconnected means the test ended (perhaps failing): only a timeout is a deadlock.
        if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(bound) {
            eprintln!("load test: no progress after {bound:?}: deadlock");
            std::process::exit(1);
        }
    });

    // The shortest tick autosync allows; this test binary holds no other test it could disturb.
    cacheman::autosync::set_tick_interval(Duration::from_millis(10));
    let dir = tempfile::tempdir().unwrap();
    let caches = open_caches(dir.path());
    let computations = AtomicU64::new(0);
    let tallies: Vec<Tally> = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (caches, computations) = (&caches, &computations);
                s.spawn(move || work(caches, t, ops, computations))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let _ = done.send(());

    // Nothing lost: every thread's own keys hold exactly what it last wrote.
    let main = &caches.main;
    let mut expected_len = 0;
    for (t, tally) in tallies.iter().enumerate() {
        for i in 0..OWN_KEYS {
            let key = own_key(t as u64, i);
            assert_eq!(
                main.get(&key),
                tally.model.get(&key).copied(),
                "key {key:#x}"
            );
        }
        expected_len += tally.model.len();
    }
    let computed = computations.load(Ordering::Relaxed);
    let shared_present = (0..SHARED_KEYS).filter(|k| main.contains_key(k)).count();
    // Shared keys are never removed: each was computed exactly once, by one thread.
    assert_eq!(
        computed, shared_present as u64,
        "a shared key was computed twice"
    );
    assert_eq!(main.len(), expected_len + shared_present);

    // Statistics agree with what the threads did (the checks above added OWN_KEYS * THREADS
    // gets of their own).
    let stats = main.stats();
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    let checks = OWN_KEYS * THREADS;
    let check_hits = expected_len as u64;
    let lookups = sum(|t| t.gets) + sum(|t| t.computes_called) + checks;
    assert_eq!(stats.hits + stats.misses, lookups, "{stats:?}");
    assert!(stats.hits >= sum(|t| t.get_hits) + check_hits, "{stats:?}");
    assert!(stats.misses >= computed, "{stats:?}");
    assert_eq!(stats.inserts, sum(|t| t.inserts) + computed, "{stats:?}");
    assert_eq!(stats.evictions, 0);
    // The workers run for hundreds of ticks; a run without an automatic save tested nothing.
    let saves = stats.saves;
    assert!(saves > 0, "autosync never saved during the run");

    // And the file holds what memory holds.
    caches.manager.save_all_cache_contents().unwrap();
    let fresh = CacheManager::new("load", dir.path());
    let reloaded = fresh.register_cache::<u64, u64>("main").unwrap();
    assert_eq!(
        reloaded.snapshot(),
        main.snapshot(),
        "the saved file differs from memory"
    );

    // An invalidation of root still clears root and edge, in memory and on disk.
    caches.manager.invalidate_cache("root").unwrap();
    assert!(caches.root.is_empty() && caches.edge.is_empty());
    let fresh = open_caches(dir.path());
    assert!(fresh.root.is_empty() && fresh.edge.is_empty());

    eprintln!(
        "load test: {THREADS} threads x {ops} ops, {saves} saves, {} invalidations, {computed} computations, {stats:?}",
        sum(|t| t.invalidations)
    );
}
