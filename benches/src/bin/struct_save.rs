//! A whole save (`Cache::compact`) of 1,000,000 entries of a realistic value type, a struct
//! with a `String`, a `Vec<f64>` and a few integers (about 100 bytes encoded), against a
//! durable write of as many bytes ([`benches::replace_durably`]), in turn, medians. Issue 16
//! asked whether the save path's special cases for `Vec<u8>` and `String` values (one-copy
//! byte strings, prefetch hints) speed such a type; this measures the save it gets.
//!
//! `cargo run --release -p benches --bin struct_save [ROUNDS]` prints one JSON object.

use std::time::{Duration, Instant};

use cacheman::{AutoSync, Cache, CacheManager, CacheOptions};
use serde::{Deserialize, Serialize};

const ENTRIES: u64 = 1_000_000;

#[derive(Clone, Serialize, Deserialize)]
struct Reading {
    station: String,
    samples: Vec<f64>,
    day: u32,
    flags: u16,
    count: u64,
}

fn reading(key: u64) -> Reading {
    Reading {
        station: format!("station-{:06}", key % 100_000),
        samples: (0..8).map(|i| (key + i) as f64 * 0.5).collect(),
        day: (key % 365) as u32,
        flags: (key % 7) as u16,
        count: key,
    }
}

fn millis(work: impl FnOnce()) -> f64 {
    let started = Instant::now();
    work();
    started.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let rounds = benches::count_arg(9);
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("bench", dir.path());
    let options = CacheOptions::new().autosync(AutoSync::disabled());
    let cache: Cache<u64, Reading> = manager.register_custom_cache("structs", options).unwrap();
    cache.extend((0..ENTRIES).map(|k| (k, reading(k))));
    cache.compact().unwrap();
    let bytes = std::fs::read(manager.cache_file_path("structs").unwrap()).unwrap();
    let plain = dir.path().join("plain.bin");
    drop(benches::replace_durably(&plain, &bytes, true));
    let (mut saves, mut writes) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let save = || millis(|| cache.compact().unwrap());
        let write = || {
            let started = Instant::now();
            let replaced = benches::replace_durably(&plain, &bytes, true);
            let ms = started.elapsed().as_secs_f64() * 1e3;
            drop(replaced.old);
            ms
        };
        std::thread::sleep(Duration::from_millis(100));
        if round % 2 == 0 {
            saves.push(save());
            writes.push(write());
        } else {
            writes.push(write());
            saves.push(save());
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (save_ms, write_ms) = (median(saves), median(writes));
    println!(
        "{{\"rounds\": {rounds}, \"file_bytes\": {}, \"save_ms\": {save_ms:.1}, \
         \"std_write_fsync_ms\": {write_ms:.1}, \"ratio\": {:.3}}}",
        bytes.len(),
        save_ms / write_ms
    );
}
