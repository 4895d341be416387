//! Workload 7 of BENCHMARKS.md: resident bytes per entry of 1,000,000 `u64 → u64` entries.
//!
//! `cargo run --release -p benches --bin memory -- KIND` with KIND one of `hashmap` (a plain
//! `std` map, the baseline), `cacheman` (a memory cache), `cacheman_persistent` (a persistent
//! cache, saved once). Each kind runs in a process of its own, so one cannot inherit another's
//! freed memory. Prints one JSON object.

use std::collections::HashMap;
use std::hint::black_box;

const ENTRIES: u64 = 1_000_000;

/// Resident set size of this process, in bytes (Linux: the second field of /proc/self/statm).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm (Linux)");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // Pages of 4 KiB: the page size of every Linux target this is run on.
    pages * 4096
}

fn main() {
    let kind = std::env::args().nth(1).unwrap_or_else(|| "hashmap".into());
    let dir = tempfile::tempdir().unwrap();
    let manager = cacheman::CacheManager::new("memory", dir.path());
    let before = resident_bytes();
    let after = match kind.as_str() {
        "hashmap" => {
            let map: HashMap<u64, u64> = (0..ENTRIES).map(|k| (k, k)).collect();
            let after = resident_bytes();
            black_box(map);
            after
        }
        "cacheman" => {
            let options = cacheman::CacheOptions::new().persistent(false);
            let cache = manager
                .register_custom_cache::<u64, u64>("m", options)
                .unwrap();
            cache.extend((0..ENTRIES).map(|k| (k, k)));
            resident_bytes()
        }
        "cacheman_persistent" => {
            let options = cacheman::CacheOptions::new().autosync(cacheman::AutoSync::disabled());
            let cache = manager
                .register_custom_cache::<u64, u64>("p", options)
                .unwrap();
            cache.extend((0..ENTRIES).map(|k| (k, k)));
            cache.save().unwrap();
            resident_bytes()
        }
        other => panic!("unknown kind {other}: hashmap, cacheman or cacheman_persistent"),
    };
    let per_entry = (after - before) as f64 / ENTRIES as f64;
    println!(
        "{{\"kind\": \"{kind}\", \"entries\": {ENTRIES}, \"bytes_per_entry\": {per_entry:.1}}}"
    );
}
