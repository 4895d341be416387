//! What `#[cached]` adds to a cache hit: a call of a `#[cached]` function whose key is cached,
//! against the same lookup through the `Cache` handle and against calling the body directly.
//! The macro's share is the `OnceLock` read and building the owned key (a `String` for `&str`).
//!
//! `cargo bench -p benches --bench macro_hit -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use cacheman::{AutoSync, CacheManager, cached};
use criterion::{Criterion, criterion_group, criterion_main};

#[cached(manager = "bench_cached", persistent = false)]
fn square(n: u64) -> u64 {
    n * n
}

#[cached(manager = "bench_cached", persistent = false)]
fn word_length(word: &str) -> usize {
    word.chars().count()
}

fn hits(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("bench_cached", dir.path());
    manager.set_autosync(AutoSync::disabled());
    cacheman::set_cache_manager(manager).unwrap();
    square(7);
    word_length("cacheman");
    let handle = square_cache();

    let mut group = c.benchmark_group("hit");
    group.bench_function("cached_fn_u64", |b| b.iter(|| square(black_box(7))));
    group.bench_function("cache_handle_u64", |b| {
        b.iter(|| handle.get_or_insert_with(black_box(7), || unreachable!()))
    });
    group.bench_function("body_u64", |b| b.iter(|| square_uncached(black_box(7))));
    group.bench_function("cached_fn_str", |b| {
        b.iter(|| word_length(black_box("cacheman")))
    });
    group.finish();
}

criterion_group!(benches, hits);
criterion_main!(benches);
