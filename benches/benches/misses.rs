//! Workload 3 of BENCHMARKS.md: misses of distinct keys (each computes and inserts) on one
//! thread and on two threads, for cacheman's and the `cached` crate's `#[cached]`. The figure
//! is the two threads' throughput over one thread's: 2.0 when misses never wait on each other.
//! cacheman twice: a memory cache (`persistent = false`, `cacheman`) and the default,
//! persistent `#[cached]` (`cacheman_persistent`), which also journals every insert.
//!
//! `cargo bench -p benches --bench misses`

use std::hint::black_box;

use benches::{private_cache_dir, timed_on_threads};
use cached::Cached;
use criterion::{Criterion, Throughput};

#[cacheman::cached(persistent = false)]
fn mix(n: u64) -> u64 {
    n.rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15
}

/// The default `#[cached]`: persistent (autosync off, see `benches::without_autosync`).
#[cacheman::cached]
fn mix_persistent(n: u64) -> u64 {
    n.rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15
}

#[cached::proc_macro::cached]
fn mix_peer(n: u64) -> u64 {
    n.rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15
}

/// A contender: its name, what empties its cache, and its memoized function.
type Contender = (&'static str, fn(), fn(u64) -> u64);

/// Keys of thread `t` never meet another thread's: each thread owns a range.
fn key(thread: usize, i: u64) -> u64 {
    ((thread as u64) << 40) | i
}

fn misses(c: &mut Criterion) {
    for threads in [1, 2] {
        let mut group = c.benchmark_group(format!(
            "miss_{threads}_thread{}",
            if threads > 1 { "s" } else { "" }
        ));
        // Per miss, summed over the threads: a higher rate with two threads is the scaling.
        group.throughput(Throughput::Elements(threads as u64));
        let contenders: [Contender; 3] = [
            ("cacheman", || mix_cache().clear(), mix),
            (
                "cacheman_persistent",
                || mix_persistent_cache().clear(),
                mix_persistent,
            ),
            (
                "cached",
                || MIX_PEER.lock().unwrap().cache_clear(),
                mix_peer,
            ),
        ];
        for (name, clear, miss) in contenders {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    clear();
                    timed_on_threads(threads, iters, |t, iters| {
                        for i in 0..iters {
                            black_box(miss(key(t, i)));
                        }
                    })
                })
            });
        }
        group.finish();
    }
    assert!(mix_cache().stats().misses > 0);
    assert!(mix_persistent_cache().stats().misses > 0);
}

fn main() {
    let _dir = private_cache_dir();
    benches::without_autosync();
    let mut criterion = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .configure_from_args();
    misses(&mut criterion);
    criterion.final_summary();
}
