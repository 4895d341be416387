//! Issue 18's goals, measured so that the ratios mean something on a shared machine: hits on
//! 1,024 warm `u64` keys of a bounded cache (capacity 10,000) against quick_cache's, of an
//! expiring cache (TTL one hour, on the system clock) against an unbounded one, and of a
//! `#[cached(capacity = 10_000)]` function against the `cached` crate's
//! `#[cached(size = 10_000)]`, each on 1 and 2 threads. Contenders take turns in short windows
//! (the order rotates every round), so a slow second of the host slows each alike. The time per
//! lookup is as each thread sees it: a window's time on one thread over its lookups.
//!
//! `cargo run --release -p benches --bin bounded_ratio [ROUNDS]` prints one JSON object.

use std::time::Duration;

use benches::{HOT_KEYS, count_arg, hot_keys};
use cacheman::{Cache, CacheManager, CacheOptions};

const WINDOW_MS: u64 = 40;
const CAPACITY: usize = 10_000;

// Defined here, not in the shared library: see its documentation.
#[cacheman::cached(persistent = false, capacity = 10_000)]
fn bounded_square(n: u64) -> u64 {
    n.wrapping_mul(n)
}

#[cached::proc_macro::cached(size = 10_000)]
fn bounded_square_peer(n: u64) -> u64 {
    n.wrapping_mul(n)
}

type Lookup<'a> = &'a (dyn Fn(u64) -> u64 + Sync);

/// Passes over the hot keys for `WINDOW_MS` on `threads` threads at once; returns the lookups
/// and the time the threads spent, summed over the threads.
fn window(threads: usize, keys: &[u64], lookup: Lookup<'_>) -> (u64, Duration) {
    let one = || benches::lookup_window(keys, Duration::from_millis(WINDOW_MS), lookup);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(one)).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .fold((0, Duration::ZERO), |(n, t), (dn, dt)| (n + dn, t + dt))
    })
}

fn memory_cache(manager: &CacheManager, name: &str, options: CacheOptions) -> Cache<u64, u64> {
    let cache = manager
        .register_custom_cache::<u64, u64>(name, options.persistent(false))
        .expect("a memory cache");
    cache.extend((0..HOT_KEYS).map(|k| (k, k.wrapping_mul(k))));
    cache
}

fn main() {
    let rounds = count_arg(30);
    let dir = benches::private_cache_dir();
    let manager = CacheManager::new("bounded_ratio", dir.path());
    let bounded = memory_cache(&manager, "bounded", CacheOptions::new().capacity(CAPACITY));
    let plain = memory_cache(&manager, "plain", CacheOptions::new());
    let hour = Duration::from_secs(3600);
    let expiring = memory_cache(&manager, "expiring", CacheOptions::new().ttl(hour));
    let quick = quick_cache::sync::Cache::<u64, u64>::new(CAPACITY);
    for k in 0..HOT_KEYS {
        quick.insert(k, k.wrapping_mul(k));
        bounded_square(k);
        bounded_square_peer(k);
    }
    let keys = hot_keys();
    let get = |cache: &Cache<u64, u64>, k| cache.get(&k).unwrap_or_default();
    // Through `&dyn Fn`, as in `hit_ratio`: every contender pays the same call.
    let lookups: [(&str, Lookup<'_>); 6] = [
        ("cacheman_bounded", &|k| get(&bounded, k)),
        ("quick_cache", &|k| quick.get(&k).unwrap_or_default()),
        ("cacheman_expiring", &|k| get(&expiring, k)),
        ("cacheman_unbounded", &|k| get(&plain, k)),
        ("cached_fn_capacity", &bounded_square),
        ("cached_crate_fn_size", &bounded_square_peer),
    ];
    let contenders: Vec<(usize, &str, Lookup<'_>)> = [1, 2]
        .into_iter()
        .flat_map(|threads| lookups.iter().map(move |&(name, f)| (threads, name, f)))
        .collect();
    for &(threads, _, lookup) in &contenders {
        window(threads, &keys, lookup);
    }
    let mut totals = vec![(0u64, Duration::ZERO); contenders.len()];
    for round in 0..rounds {
        for i in 0..contenders.len() {
            let which = (round + i) % contenders.len();
            let (threads, _, lookup) = contenders[which];
            let (n, t) = window(threads, &keys, lookup);
            totals[which] = (totals[which].0 + n, totals[which].1 + t);
        }
    }
    assert_eq!(bounded.stats().misses, 0, "every timed lookup was a hit");
    assert_eq!(bounded_square_cache().stats().misses, HOT_KEYS);
    let ns: Vec<f64> = totals
        .iter()
        .map(|&(n, t)| t.as_nanos() as f64 / n as f64)
        .collect();
    let find = |threads, name| {
        let at = contenders
            .iter()
            .position(|&(t, n, _)| t == threads && n == name)
            .expect("a contender of that name");
        ns[at]
    };
    let mut fields = vec![format!("\"rounds\": {rounds}, \"window_ms\": {WINDOW_MS}")];
    for threads in [1, 2] {
        for (name, _) in lookups {
            fields.push(format!(
                "\"{name}_ns_{threads}t\": {:.2}",
                find(threads, name)
            ));
        }
        let ratio = |a, b| find(threads, a) / find(threads, b);
        fields.push(format!(
            "\"bounded_over_quick_cache_{threads}t\": {:.3}, \
             \"expiring_over_unbounded_{threads}t\": {:.3}, \
             \"fn_capacity_over_cached_size_{threads}t\": {:.3}",
            ratio("cacheman_bounded", "quick_cache"),
            ratio("cacheman_expiring", "cacheman_unbounded"),
            ratio("cached_fn_capacity", "cached_crate_fn_size"),
        ));
    }
    println!("{{{}}}", fields.join(", "));
}
