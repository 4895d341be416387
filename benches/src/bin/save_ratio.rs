//! Workload 4 of BENCHMARKS.md (the save), measured so that the ratio means something on a
//! shared machine: a save of 1,000,000 entries (`u64` → 100-byte `Vec<u8>`) and
//! `std::fs::write` + fsync of the same file's bytes, taken in turn (the order flips every
//! round), so that a slow minute of the host slows both sides alike. The criterion pair in
//! `benches/save_load.rs` measures them a minute apart, and there the same write once took
//! longer without fsync than with it. The fsync of the plain write is also timed on its own:
//! the report estimates a save without fsync from it, to compare with CacheMan, which does not
//! fsync.
//!
//! `cargo run --release -p benches --bin save_ratio [ROUNDS]` prints one JSON object.

use std::io::Write;
use std::time::Instant;

use cacheman::{AutoSync, Cache, CacheManager, CacheOptions};

const ENTRIES: u64 = 1_000_000;

/// Milliseconds `work` took.
fn timed(work: impl FnOnce()) -> f64 {
    let started = Instant::now();
    work();
    started.elapsed().as_secs_f64() * 1e3
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds = benches::count_arg(25);
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("bench", dir.path());
    // Saved when this program says so, never by the background saver.
    let options = CacheOptions::new().autosync(AutoSync::disabled());
    let cache: Cache<u64, Vec<u8>> = manager.register_custom_cache("big", options).unwrap();
    cache.extend((0..ENTRIES).map(|k| (k, benches::value_of(k))));
    cache.save().unwrap();
    let bytes = std::fs::read(manager.cache_file_path("big").unwrap()).unwrap();
    let plain = dir.path().join("plain.bin");

    // Each timed step starts on a settled machine: a save lets go of the file it replaced on a
    // thread of its own (about 20 ms of freeing pages), which would otherwise run into the
    // next step, whichever side that is.
    let settle = || std::thread::sleep(std::time::Duration::from_millis(100));
    let save = || {
        settle();
        timed(|| {
            // A change, so the save has something to do (it writes the whole file anyway).
            cache.insert(0, benches::value_of(0));
            cache.save().unwrap();
        })
    };
    // Returns the whole step and its fsync, in milliseconds.
    let write = || {
        settle();
        let mut fsync = 0.0;
        let whole = timed(|| {
            let mut file = std::fs::File::create(&plain).unwrap();
            file.write_all(&bytes).unwrap();
            fsync = timed(|| file.sync_all().unwrap());
        });
        (whole, fsync)
    };
    // Once each first: the plain file then exists, as the cache file does.
    save();
    write();
    let (mut saves, mut writes, mut fsyncs, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (s, (w, f)) = if round % 2 == 0 {
            let s = save();
            (s, write())
        } else {
            let w = write();
            (save(), w)
        };
        saves.push(s);
        writes.push(w);
        fsyncs.push(f);
        ratios.push(s / w);
    }
    let (save_ms, write_ms) = (median(&mut saves), median(&mut writes));
    let fsync_ms = median(&mut fsyncs);
    let ratio_median = median(&mut ratios);
    println!(
        "{{\"rounds\": {rounds}, \"file_bytes\": {}, \"cacheman_save_ms\": {save_ms:.1}, \
         \"std_write_fsync_ms\": {write_ms:.1}, \"std_fsync_ms\": {fsync_ms:.1}, \
         \"ratio\": {:.3}, \"ratio_median\": {ratio_median:.3}, \
         \"ratio_min\": {:.3}, \"ratio_max\": {:.3}}}",
        bytes.len(),
        save_ms / write_ms,
        ratios[0],
        ratios[ratios.len() - 1],
    );
}
