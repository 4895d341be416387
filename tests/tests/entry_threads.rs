//! Per-entry dependencies under threads: readers look up derived entries while another thread
//! changes what they were derived from. The property checked, for every lookup:
//!
//! > The writer publishes version `n` of input `k` (by `insert`, or by changing the source and
//! > `invalidate_key`), then announces `n` in `done[k]`. A reader reads `floor = done[k]`, then
//! > looks the derived entry up. The value it gets must be derived from version `floor` or a
//! > later one: a change that was complete before the lookup started is never missed.
//!
//! A lookup concurrent with a change may see either version; a stale value *stored* (and so
//! served to every later lookup) is what breaks the property, and it is also checked once the
//! writer is done: then every entry must be derived from the last version. The writer runs a
//! fixed number of rounds and the readers stop when it is done: bounded, with no sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use cacheman::{Cache, CacheManager, CacheOptions};

const KEYS: u64 = 4;
/// Versions written per input: inserts are cheap; an invalidation also writes the graph file
/// (for persistent caches), so fewer of them.
const fn rounds(how: Change) -> u64 {
    match how {
        Change::Insert => 1500,
        Change::Invalidate => 400,
    }
}
const READERS: usize = 3;

/// How the writer changes an input.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// `raw.insert(k, n)`.
    Insert,
    /// `source[k] = n`, then `raw.invalidate_key(k)`: `raw` recomputes from the source.
    Invalidate,
}

struct World {
    raw: Cache<u64, u64>,
    derived: Cache<u64, u64>,
    /// Read by `raw`'s body.
    source: Vec<AtomicU64>,
    /// The last version of each input whose change is complete.
    done: Vec<AtomicU64>,
}

impl World {
    fn new(manager: &CacheManager, persistent: bool) -> Arc<World> {
        let (raw, derived) = if persistent {
            (
                manager.register_cache("raw").unwrap(),
                manager.register_cache("derived").unwrap(),
            )
        } else {
            (
                manager
                    .register_memory_cache("raw", CacheOptions::new())
                    .unwrap(),
                manager
                    .register_memory_cache("derived", CacheOptions::new())
                    .unwrap(),
            )
        };
        Arc::new(World {
            raw,
            derived,
            source: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
            done: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    fn raw(&self, key: u64) -> u64 {
        self.raw
            .get_or_insert_with(key, || self.source[key as usize].load(Ordering::SeqCst))
    }

    /// Derived from `raw` alone: the version it was computed from, times a thousand, plus
    /// the key (so that a value of another key would show too).
    fn derived(&self, key: u64) -> u64 {
        self.derived
            .get_or_insert_with(key, || self.raw(key) * 1000 + key)
    }

    fn change(&self, key: u64, version: u64, how: Change) {
        match how {
            Change::Insert => {
                self.raw.insert(key, version);
            }
            Change::Invalidate => {
                self.source[key as usize].store(version, Ordering::SeqCst);
                self.raw.invalidate_key(&key).unwrap();
            }
        }
        self.done[key as usize].store(version, Ordering::SeqCst);
    }
}

fn run(persistent: bool, how: Change) {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("entry_threads", dir.path());
    let world = World::new(&manager, persistent);
    for key in 0..KEYS {
        assert_eq!(world.derived(key), key);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (world, stop) = (Arc::clone(&world), Arc::clone(&stop));
            thread::spawn(move || {
                let mut stale = Vec::new();
                let mut lookups = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    for key in 0..KEYS {
                        let floor = world.done[key as usize].load(Ordering::SeqCst);
                        let value = world.derived(key);
                        lookups += 1;
                        if value % 1000 != key || value / 1000 < floor {
                            stale.push((key, floor, value));
                        }
                    }
                }
                (stale, lookups)
            })
        })
        .collect();
    for version in 1..=rounds(how) {
        for key in 0..KEYS {
            world.change(key, version, how);
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut lookups = 0;
    for reader in readers {
        let (stale, n) = reader.join().unwrap();
        lookups += n;
        assert!(
            stale.is_empty(),
            "{how:?} (persistent: {persistent}): {} of the lookups got a value derived from a \
             version replaced before they started, e.g. (key, floor, value) {:?}",
            stale.len(),
            &stale[..stale.len().min(5)]
        );
    }
    assert!(lookups > 0);
    for key in 0..KEYS {
        assert_eq!(
            world.derived(key),
            rounds(how) * 1000 + key,
            "{how:?} (persistent: {persistent}): key {key} is stuck on an older version"
        );
    }
}

#[test]
fn inserts_are_never_missed_by_derived_lookups() {
    run(true, Change::Insert);
    run(false, Change::Insert);
}

#[test]
fn invalidations_are_never_missed_by_derived_lookups() {
    run(false, Change::Invalidate);
    run(true, Change::Invalidate);
}
