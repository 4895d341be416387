//! What the benchmarks in `benches/` and the programs in `src/bin/` share: the workloads' keys,
//! a private cache directory, a large saved cache, and a runner that times the same work on one
//! or more threads at once.
//!
//! Memoized functions are not shared from here: each program defines its own, as users do in
//! their own crate. Defined in this library instead, cacheman's `#[cached]` hit measured
//! 1.32–1.38× the `cached` crate's, against 1.20–1.23× when defined in the program.
//!
//! Run the whole suite, with the Python CacheMan and the report, through `benches/run.sh`.

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Warm keys of the hit workloads.
pub const HOT_KEYS: u64 = 1_024;

/// A persistent `u64 → u64` cache named `name` in `dir` holding `entries` entries, saved once,
/// that saves only when asked (no autosync): the cache the autosync workload saves.
pub fn saved_u64_cache(
    dir: &std::path::Path,
    name: &str,
    entries: u64,
) -> cacheman::Cache<u64, u64> {
    let manager = cacheman::CacheManager::new("bench", dir);
    let options = cacheman::CacheOptions::new().autosync(cacheman::AutoSync::disabled());
    let cache = manager
        .register_custom_cache::<u64, u64>(name, options)
        .expect("a new cache in a fresh directory");
    cache.extend((0..entries).map(|i| (i, i)));
    cache.save().expect("a save into a fresh directory");
    cache
}

/// The program's first argument as a count (of rounds), or `default` without one.
pub fn count_arg(default: usize) -> usize {
    std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// The hot keys in a scattered order, so a run of lookups does not walk memory in key order.
pub fn hot_keys() -> Vec<u64> {
    // 7919 is odd, so multiplying modulo a power of two is a permutation.
    (0..HOT_KEYS).map(|k| (k * 7_919) % HOT_KEYS).collect()
}

/// Points `CACHEMAN_DIR` at a fresh temporary directory, so caches on the default manager (as
/// `#[cached]` functions use) never touch the user's cache directory. Call first thing in
/// `main`, before any thread starts; keep the directory alive for the whole run.
pub fn private_cache_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory for the benchmark's caches");
    // SAFETY: called before the benchmark starts any thread, so nothing reads the environment.
    unsafe { std::env::set_var("CACHEMAN_DIR", dir.path()) };
    dir
}

/// Turns the default manager's autosync off, for the caches it registers from now on (call
/// before the first call of a `#[cached]` function). The benchmarks of the default,
/// persistent `#[cached]` use it: their caches keep the journal of every change that a save
/// merges from, as by default, but no background save lands in a timed window (workload 5
/// measures that), and nothing is flushed at exit into a directory already removed.
pub fn without_autosync() {
    cacheman::get_cache_manager().set_autosync(cacheman::AutoSync::disabled());
}

/// Runs `work(thread, iters)` on `threads` threads started together, and returns the wall time
/// until the last one finished (what criterion's `iter_custom` expects).
pub fn timed_on_threads<F>(threads: usize, iters: u64, work: F) -> Duration
where
    F: Fn(usize, u64) + Sync,
{
    let start_line = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (start_line, work) = (&start_line, &work);
                scope.spawn(move || {
                    start_line.wait();
                    work(t, iters);
                })
            })
            .collect();
        start_line.wait();
        let started = Instant::now();
        for handle in handles {
            handle.join().expect("a benchmark thread panicked");
        }
        started.elapsed()
    })
}

/// What [`replace_durably`] did: the file it replaced, still open, and how long the fsync of
/// the new file took.
pub struct Replaced {
    /// The replaced file, held open across the rename, so that its pages and blocks are freed
    /// when the caller drops it (about 20 ms for a 100 MB file here), not inside the rename.
    pub old: Option<std::fs::File>,
    /// The new file's fsync.
    pub fsync: Duration,
}

/// Replaces `path` with `bytes` as a program that keeps its data must, and as a cacheman save
/// does: a new file beside it, written, fsynced (unless `fsync` is false), renamed over the old
/// one, and the directory fsynced. Like a cacheman save, it holds the replaced file open across
/// the rename and hands it back: a save lets go of it on a thread of its own after returning,
/// so a baseline that freed it inside its timed region would be charged for work the save is
/// not (truncating a 104 MB file in place took 23-25 ms here, a fresh file 0.1 ms).
pub fn replace_durably(path: &std::path::Path, bytes: &[u8], fsync: bool) -> Replaced {
    use std::io::Write;
    let dir = path.parent().expect("a file in a directory");
    let temp = path.with_extension("new");
    let mut file = std::fs::File::create(&temp).expect("a new file beside the old one");
    file.write_all(bytes).expect("the bytes written");
    let started = Instant::now();
    if fsync {
        file.sync_all().expect("the new file fsynced");
    }
    let fsync_time = started.elapsed();
    drop(file);
    let old = std::fs::File::open(path).ok();
    std::fs::rename(&temp, path).expect("the new file renamed over the old one");
    if fsync {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .expect("the directory fsynced");
    }
    Replaced {
        old,
        fsync: fsync_time,
    }
}

/// Passes over `keys` with `lookup` for `window` (at least one pass); returns the lookups and
/// the time they took. The programs that take turns between contenders time each turn so.
pub fn lookup_window(
    keys: &[u64],
    window: Duration,
    lookup: &dyn Fn(u64) -> u64,
) -> (u64, Duration) {
    let start = Instant::now();
    let mut lookups = 0;
    while start.elapsed() < window {
        for &k in keys {
            std::hint::black_box(lookup(std::hint::black_box(k)));
        }
        lookups += keys.len() as u64;
    }
    (lookups, start.elapsed())
}

/// The 100-byte value stored under `key` by the save and load workloads (the Python script
/// stores the same bytes).
pub fn value_of(key: u64) -> Vec<u8> {
    key.to_le_bytes()
        .iter()
        .copied()
        .cycle()
        .take(100)
        .collect()
}

/// Milliseconds `work` took.
pub fn millis_of(work: impl FnOnce()) -> f64 {
    let started = Instant::now();
    work();
    started.elapsed().as_secs_f64() * 1e3
}

/// The median of `values` (the upper one of an even count).
pub fn middle(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Whether a background compaction (a thread named `cacheman-compact`) is running in this
/// process (Linux: read from `/proc/self/task`).
pub fn compaction_running() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| {
        tasks.flatten().any(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with("cacheman-compac"))
        })
    })
}

/// Waits (at most 5 minutes) for background compactions to end.
pub fn wait_for_compactions() {
    let started = Instant::now();
    while compaction_running() && started.elapsed() < std::time::Duration::from_secs(300) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Bytes this process has handed to `write` so far (`wchar` of `/proc/self/io`; Linux).
pub fn bytes_written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("Linux's /proc/self/io");
    io.lines()
        .find_map(|line| line.strip_prefix("wchar: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("a wchar line")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_keys_are_a_permutation() {
        let mut keys = hot_keys();
        keys.sort_unstable();
        assert_eq!(keys, (0..HOT_KEYS).collect::<Vec<_>>());
    }

    #[test]
    fn every_thread_runs_the_work() {
        let ran = std::sync::atomic::AtomicU64::new(0);
        timed_on_threads(3, 5, |_, iters| {
            ran.fetch_add(iters, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(ran.into_inner(), 15);
    }

    #[test]
    fn replace_durably_replaces_and_hands_back_the_old_file() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.bin");
        assert!(replace_durably(&path, b"old", true).old.is_none());
        let replaced = replace_durably(&path, b"new", true);
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let mut old = String::new();
        replaced.old.unwrap().read_to_string(&mut old).unwrap();
        assert_eq!(old, "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn values_are_100_bytes_of_the_key() {
        let v = value_of(0x0102_0304_0506_0708);
        assert_eq!(v.len(), 100);
        assert_eq!(&v[..8], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&v[96..], &v[..4]);
    }
}
