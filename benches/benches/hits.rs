//! Workloads 1 and 2 of BENCHMARKS.md: a hit of a memoized `fn(u64) -> u64` over 1,024 warm
//! keys, on one thread and on two threads sharing the cache, against the `cached` crate's
//! `#[cached]`, moka, quick_cache, a `Mutex<HashMap>` and a bare `HashMap` (no lock at all).
//! cacheman twice: a memory cache (`persistent = false`, `cacheman`) and the default,
//! persistent `#[cached]` (`cacheman_persistent`).
//!
//! `cargo bench -p benches --bench hits`

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;

use benches::{HOT_KEYS, hot_keys, private_cache_dir, timed_on_threads};
use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};

type FastMap = HashMap<u64, u64, foldhash::fast::RandomState>;

#[cacheman::cached(persistent = false)]
fn square(n: u64) -> u64 {
    n.wrapping_mul(n)
}

/// The default `#[cached]`: persistent (autosync off, see `benches::without_autosync`).
#[cacheman::cached]
fn square_persistent(n: u64) -> u64 {
    n.wrapping_mul(n)
}

#[cached::proc_macro::cached]
fn square_peer(n: u64) -> u64 {
    n.wrapping_mul(n)
}

/// The contenders, each warm with the hot keys.
struct Contenders {
    moka: moka::sync::Cache<u64, u64>,
    quick: quick_cache::sync::Cache<u64, u64>,
    mutex: Mutex<FastMap>,
    bare: FastMap,
}

impl Contenders {
    fn warm() -> Self {
        let moka = moka::sync::Cache::new(2 * HOT_KEYS);
        let quick = quick_cache::sync::Cache::new(2 * HOT_KEYS as usize);
        let mut bare = FastMap::default();
        for k in 0..HOT_KEYS {
            square(k);
            square_persistent(k);
            square_peer(k);
            moka.insert(k, k * k);
            quick.insert(k, k * k);
            bare.insert(k, k * k);
        }
        assert_eq!(square_cache().len(), HOT_KEYS as usize);
        // Saved once, so its file holds the hot keys and it has no pending changes.
        square_persistent_cache().save().unwrap();
        Contenders {
            moka,
            quick,
            mutex: Mutex::new(bare.clone()),
            bare,
        }
    }

    /// One pass over the hot keys with each contender, as a named benchmark.
    fn bench_all(&self, group: &mut BenchmarkGroup<'_, WallTime>, threads: usize) {
        let keys = hot_keys();
        let keys = &keys;
        let mut run = |name: &str, lookup: &(dyn Fn(u64) -> u64 + Sync)| {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    timed_on_threads(threads, iters, |_, iters| {
                        for _ in 0..iters {
                            for &k in keys {
                                black_box(lookup(black_box(k)));
                            }
                        }
                    })
                })
            });
        };
        run("cacheman", &square);
        run("cacheman_persistent", &square_persistent);
        run("cached", &square_peer);
        run("moka", &|k| self.moka.get(&k).unwrap_or_default());
        run("quick_cache", &|k| self.quick.get(&k).unwrap_or_default());
        run("mutex_hashmap", &|k| {
            self.mutex
                .lock()
                .unwrap()
                .get(&k)
                .copied()
                .unwrap_or_default()
        });
        if threads == 1 {
            run("hashmap_no_lock", &|k| {
                self.bare.get(&k).copied().unwrap_or_default()
            });
        }
    }
}

fn hits(c: &mut Criterion) {
    let contenders = Contenders::warm();
    for (group, threads) in [("hit_1_thread", 1), ("hit_2_threads", 2)] {
        let mut group = c.benchmark_group(group);
        // Per lookup, as each thread sees it.
        group.throughput(Throughput::Elements(HOT_KEYS));
        contenders.bench_all(&mut group, threads);
        group.finish();
    }
    // Every lookup above was a hit: the functions ran once per key, when warmed.
    assert_eq!(square_cache().stats().misses, HOT_KEYS);
    assert_eq!(square_persistent_cache().stats().misses, HOT_KEYS);
}

fn main() {
    let _dir = private_cache_dir();
    benches::without_autosync();
    let mut criterion = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .configure_from_args();
    hits(&mut criterion);
    criterion.final_summary();
}
