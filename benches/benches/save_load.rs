//! Workload 4 of BENCHMARKS.md: save and load of 1,000,000 entries (`u64` → 100-byte
//! `Vec<u8>`), against writing the same bytes as a durable program does
//! ([`benches::replace_durably`]: new file, fsync, rename, directory fsync; and the same
//! without the fsyncs) and reading them with `std::fs`, and against the `cached` crate's disk
//! store (sled) filling the same entries.
//! CacheMan's (Python) figures for the same data come from `benches/python/cacheman_bench.py`.
//!
//! `cargo bench -p benches --bench save_load`
//! (`CACHEMAN_BENCH_ENTRIES` sets the entry count, for a quick try.)

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::{private_cache_dir, value_of};
use cached::{DiskCache, IOCached};
use cacheman::{AutoSync, Cache, CacheManager, CacheOptions};
use criterion::Criterion;
use serde_bytes::ByteBuf;

fn entries() -> u64 {
    std::env::var("CACHEMAN_BENCH_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}

/// The time of `iters` replacements of `path` by `bytes`, each releasing the file it replaced
/// outside the timed region, as a cacheman save does (see [`benches::replace_durably`]).
fn std_write(path: &std::path::Path, bytes: &[u8], fsync: bool, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        let replaced = benches::replace_durably(path, black_box(bytes), fsync);
        total += started.elapsed();
        drop(replaced.old);
    }
    total
}

fn save_load(c: &mut Criterion) {
    let n = entries();
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("bench", dir.path());
    // Saved when the benchmark says so, never by the background saver.
    let options = CacheOptions::new().autosync(AutoSync::disabled());
    let cache: Cache<u64, Vec<u8>> = manager.register_custom_cache("big", options).unwrap();
    cache.extend((0..n).map(|k| (k, value_of(k))));
    cache.save().unwrap();
    let path = manager.cache_file_path("big").unwrap();
    // The same entries with `serde_bytes::ByteBuf` values, which serde copies in one piece
    // where a `Vec<u8>` goes byte by byte.
    let options = CacheOptions::new().autosync(AutoSync::disabled());
    let bytes_cache: Cache<u64, ByteBuf> = manager
        .register_custom_cache("big_bytebuf", options)
        .unwrap();
    bytes_cache.extend((0..n).map(|k| (k, ByteBuf::from(value_of(k)))));
    bytes_cache.save().unwrap();
    let file_bytes = std::fs::read(&path).unwrap();
    let plain = dir.path().join("plain.bin");

    let mut group = c.benchmark_group("save_1m");
    group.sample_size(10);
    group.bench_function("std_write_fsync", |b| {
        b.iter_custom(|iters| std_write(&plain, &file_bytes, true, iters))
    });
    group.bench_function("std_write", |b| {
        b.iter_custom(|iters| std_write(&plain, &file_bytes, false, iters))
    });
    group.bench_function("cacheman", |b| {
        b.iter(|| {
            // The whole save: a compaction (a save appends only what changed).
            cache.insert(0, value_of(0));
            cache.compact().unwrap()
        })
    });
    group.bench_function("cacheman_bytebuf", |b| {
        b.iter(|| {
            bytes_cache.insert(0, ByteBuf::from(value_of(0)));
            bytes_cache.compact().unwrap()
        })
    });
    group.bench_function("cached_disk_store_fill", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let store_dir = tempfile::tempdir_in(dir.path()).unwrap();
                let disk: DiskCache<u64, Vec<u8>> = DiskCache::new(&format!("fill{i}"))
                    .set_disk_directory(store_dir.path())
                    .build()
                    .unwrap();
                let values: Vec<Vec<u8>> = (0..n).map(value_of).collect();
                let started = Instant::now();
                for (k, v) in values.into_iter().enumerate() {
                    disk.cache_set(k as u64, v).unwrap();
                }
                disk.connection().flush().unwrap();
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();

    let mut group = c.benchmark_group("load_1m");
    group.sample_size(10);
    group.bench_function("std_read", |b| {
        b.iter(|| black_box(std::fs::read(&path).unwrap()))
    });
    group.bench_function("cacheman", |b| b.iter(|| cache.reload().unwrap()));
    group.bench_function("cacheman_bytebuf", |b| {
        b.iter(|| bytes_cache.reload().unwrap())
    });
    group.finish();
    assert_eq!(cache.len() as u64, n);
    // The file size, for the report (bytes per entry beside CacheMan's pickle).
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("save_load.json");
    std::fs::write(
        &out,
        format!(
            "{{\"entries\": {n}, \"file_bytes\": {}}}\n",
            file_bytes.len()
        ),
    )
    .unwrap();
}

fn main() {
    let _dir = private_cache_dir();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    save_load(&mut criterion);
    criterion.final_summary();
}
