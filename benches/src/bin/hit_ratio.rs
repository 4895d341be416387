//! Workload 1 of BENCHMARKS.md, measured so that the ratios mean something on a shared machine:
//! one thread's hits over 1,024 warm keys through cacheman's `#[cached]`, the `cached` crate's
//! `#[cached]` and a bare `HashMap`, in short windows taken in turn (the order rotates every
//! round). An `RwLock<HashMap>` runs beside them, not as a goal: the least a map that many
//! threads can read at once costs, one lock and nothing else; and so does the default,
//! persistent `#[cached]` (the goal is judged on the memory cache, `persistent = false`). Within one criterion run the same
//! contender measured twice differed by a fifth; here a slow second of the host slows every
//! contender alike.
//!
//! `cargo run --release -p benches --bin hit_ratio [ROUNDS]` prints one JSON object.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use benches::{HOT_KEYS, count_arg, hot_keys};

const WINDOW_MS: u64 = 20;

// Defined here, not in the shared library: see its documentation.
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

/// Passes over the hot keys for `WINDOW_MS`; returns (lookups, elapsed).
fn window(keys: &[u64], lookup: &dyn Fn(u64) -> u64) -> (u64, Duration) {
    benches::lookup_window(keys, Duration::from_millis(WINDOW_MS), lookup)
}

fn main() {
    let rounds = count_arg(150);
    let _dir = benches::private_cache_dir();
    benches::without_autosync();
    let mut bare: HashMap<u64, u64, foldhash::fast::RandomState> = HashMap::default();
    for k in 0..HOT_KEYS {
        square(k);
        square_persistent(k);
        square_peer(k);
        bare.insert(k, k.wrapping_mul(k));
    }
    square_persistent_cache().save().unwrap();
    let locked = RwLock::new(bare.clone());
    let keys = hot_keys();
    // Through `&dyn Fn`, as in `benches/hits.rs`: every contender pays the same call.
    let contenders: [(&str, &dyn Fn(u64) -> u64); 5] = [
        ("cacheman", &square),
        ("cached", &square_peer),
        ("hashmap_no_lock", &|k| {
            bare.get(&k).copied().unwrap_or_default()
        }),
        ("rwlock_hashmap", &|k| {
            let map = locked.read().unwrap_or_else(|e| e.into_inner());
            map.get(&k).copied().unwrap_or_default()
        }),
        ("cacheman_persistent", &square_persistent),
    ];
    for (_, lookup) in contenders {
        window(&keys, lookup);
    }
    let mut totals = [(0u64, Duration::ZERO); 5];
    for round in 0..rounds {
        for i in 0..contenders.len() {
            let which = (round + i) % contenders.len();
            let (n, t) = window(&keys, contenders[which].1);
            totals[which] = (totals[which].0 + n, totals[which].1 + t);
        }
    }
    assert_eq!(
        square_cache().stats().misses,
        HOT_KEYS,
        "every timed call was a hit"
    );
    let ns = |(n, t): (u64, Duration)| t.as_nanos() as f64 / n as f64;
    assert_eq!(square_persistent_cache().stats().misses, HOT_KEYS);
    let [ours, peer, bare, rwlock, persistent] = totals.map(ns);
    println!(
        "{{\"rounds\": {rounds}, \"window_ms\": {WINDOW_MS}, \"cacheman_ns\": {ours:.2}, \
         \"cached_ns\": {peer:.2}, \"hashmap_no_lock_ns\": {bare:.2}, \
         \"rwlock_hashmap_ns\": {rwlock:.2}, \
         \"cacheman_over_cached\": {:.3}, \"cacheman_over_hashmap\": {:.3}, \
         \"rwlock_over_cached\": {:.3}, \"rwlock_over_hashmap\": {:.3}, \
         \"persistent_ns\": {persistent:.2}, \"persistent_over_cached\": {:.3}, \
         \"persistent_over_memory\": {:.3}}}",
        ours / peer,
        ours / bare,
        rwlock / peer,
        rwlock / bare,
        persistent / peer,
        persistent / ours,
    );
}
