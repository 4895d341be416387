//! Workload 10 of BENCHMARKS.md: saves that cost what changed (issue 16). Three ratios, each of
//! two figures measured in turn in this one run, on a cache of 1,000,000 entries (`u64` →
//! 100-byte `Vec<u8>`, the save workload's):
//!
//! - **append / full**: a save of 10 changed entries (one frame appended to the journal and
//!   fsynced) over a full rewrite of the same cache (`Cache::compact`, today's whole save),
//!   in turn for `ROUNDS` rounds; medians. Each full rewrite removes the journal, so an
//!   untimed save starts the next one first: the timed append is a steady state's (the first
//!   append after a compaction also creates the journal: two fsyncs more). Goal ≤ 1/100.
//! - **write amplification**: 1,000 inserts a second under the default autosync points, on
//!   a `ManualClock` advanced one simulated second at a time (so a minute takes a few
//!   seconds), then a last save as the exit flush does: bytes the process wrote (`wchar` of
//!   `/proc/self/io`, every byte handed to `write`, compactions included) over the bytes of
//!   the changes (each insert's postcard key and value). Goal ≤ 3 for 60 s. The default
//!   points save the first time at 60 s (60 s and 10,000 changes), so a minute is one append
//!   or two; a second run of `--seconds N` (1,200 by default) takes the journal past the
//!   snapshot's size, and so includes a background compaction, the steady state's cost.
//! - **load with journal / snapshot alone**: a new process's load of the cache from its
//!   snapshot and a journal half the snapshot's size (500,000 entries rewritten in 5 saves),
//!   against its load of the same entries from a snapshot alone: this program run as a child
//!   that registers the cache and reports how long that took (`start_*`), the two in turn;
//!   medians. Goal ≤ 1.3. Beside it, in this process: `Cache::reload` of each (which also
//!   frees the contents it replaces, in the timing) and a new manager's open (a new hasher,
//!   nothing freed in the timing); both in turn, but each after the other's allocations.
//!
//! `cargo run --release -p benches --bin journal_ratio [ROUNDS] [--seconds N]` prints one
//! JSON object. `-- ROUNDS --load-only [--journal-rows N] [--string-keys]` times the loads
//! alone, with a journal of N replaced entries (500,000 by default) and keys of `String`
//! instead of `u64` if asked.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use benches::{bytes_written, middle, millis_of, wait_for_compactions};
use cacheman::{AutoSync, Cache, CacheManager, CacheOptions, ManualClock};

const ENTRIES: u64 = 1_000_000;

/// What a persistent cache's key needs, for the loads' two key types.
trait Key:
    std::hash::Hash
    + Eq
    + Clone
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Key for K where
    K: std::hash::Hash
        + Eq
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

fn big_cache(dir: &Path, options: CacheOptions) -> (CacheManager, Cache<u64, Vec<u8>>) {
    let manager = CacheManager::new("bench", dir);
    let cache = manager.register_custom_cache("big", options).unwrap();
    if cache.is_empty() {
        cache.extend((0..ENTRIES).map(|k| (k, benches::value_of(k))));
        cache.compact().unwrap();
    }
    (manager, cache)
}

fn manual() -> CacheOptions {
    CacheOptions::new().autosync(AutoSync::disabled())
}

/// A save of 10 changes and a full rewrite, in turn: their medians in ms.
fn append_over_full(rounds: usize) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let (_manager, cache) = big_cache(dir.path(), manual());
    let (mut appends, mut fulls) = (Vec::new(), Vec::new());
    let change = |round: u64| {
        for k in 0..10 {
            cache.insert(round * 10 + k, benches::value_of(round + k));
        }
    };
    for round in 0..rounds as u64 {
        fulls.push(millis_of(|| cache.compact().unwrap()));
        // Let the file the rewrite replaced go, and start the journal.
        std::thread::sleep(Duration::from_millis(100));
        change(round);
        cache.save().unwrap();
        change(round + 1);
        appends.push(millis_of(|| cache.save().unwrap()));
    }
    (middle(appends), middle(fulls))
}

/// Bytes written over bytes of changes for 1,000 inserts a second for `seconds` simulated
/// seconds under the default autosync points.
fn write_amplification(seconds: u64) -> (u64, u64, usize) {
    let dir = tempfile::tempdir().unwrap();
    // Shared: a clone advances the same instant.
    let clock = ManualClock::new();
    let options = CacheOptions::new().clock(clock.clone());
    let (manager, cache) = big_cache(dir.path(), options);
    let before = bytes_written();
    let mut change_bytes = 0;
    let mut saves = 0;
    let mut key = ENTRIES;
    for _ in 0..seconds {
        for _ in 0..1_000 {
            let value = benches::value_of(key);
            // postcard: the key as a varint, the value's length as a varint, its bytes.
            change_bytes += varint_len(key) + varint_len(value.len() as u64) + value.len() as u64;
            cache.insert(key, value);
            key += 1;
        }
        clock.advance(Duration::from_secs(1));
        saves += manager.run_due_saves().saved.len();
    }
    // What the exit flush does with the changes left.
    cache.save().unwrap();
    wait_for_compactions();
    (bytes_written() - before, change_bytes, saves + 1)
}

fn varint_len(n: u64) -> u64 {
    u64::from((64 - n.leading_zeros()).max(1).div_ceil(7))
}

/// A reload from a snapshot and a journal of `journal_rows` replaced entries (500,000: half
/// the snapshot's size), and from a snapshot alone of the same entries, in turn: their medians
/// in ms, and the two files' sizes. Keys are `key_of` the numbers 0..1,000,000.
fn load_with_journal<K: Key>(
    rounds: usize,
    journal_rows: u64,
    key_of: fn(u64) -> K,
    string_keys: bool,
) -> Loads {
    let (with, alone) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let filled = |dir: &Path| {
        let manager = CacheManager::new("bench", dir);
        let cache = manager
            .register_custom_cache::<K, Vec<u8>>("big", manual())
            .unwrap();
        cache.extend((0..ENTRIES).map(|k| (key_of(k), benches::value_of(k))));
        cache.compact().unwrap();
        (manager, cache)
    };
    let (journaled_manager, journaled) = filled(with.path());
    // In 5 saves (fewer for a small journal).
    let batch = journal_rows.div_ceil(5).max(1);
    for start in (0..journal_rows).step_by(batch as usize) {
        let keys = start..(start + batch).min(journal_rows);
        journaled.extend(keys.map(|k| (key_of(k), benches::value_of(k + 7))));
        journaled.save().unwrap();
    }
    let snapshot = journaled_manager.cache_file_path("big").unwrap();
    let journal_len = std::fs::metadata(snapshot.with_extension("journal"))
        .expect("the saves appended to a journal")
        .len();
    let snapshot_len = std::fs::metadata(&snapshot).unwrap().len();
    let (_alone_manager, compacted) = filled(alone.path());
    compacted.extend((0..journal_rows).map(|k| (key_of(k), benches::value_of(k + 7))));
    compacted.compact().unwrap();
    let (mut with_journal, mut snapshot_alone) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let a = || millis_of(|| journaled.reload().unwrap());
        let b = || millis_of(|| compacted.reload().unwrap());
        if round % 2 == 0 {
            with_journal.push(a());
            snapshot_alone.push(b());
        } else {
            snapshot_alone.push(b());
            with_journal.push(a());
        }
    }
    assert_eq!(journaled.len(), compacted.len());
    let first = if journal_rows > 0 { 7 } else { 0 };
    assert_eq!(journaled.get(&key_of(0)), Some(benches::value_of(first)));
    // A new process's open: a new manager (and so a new hasher) loads the files at
    // registration; the one before is dropped after the timing, so nothing is freed in it.
    let open = open_timed::<K>;
    let (mut open_with, mut open_alone) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (a, kept_a) = if round % 2 == 0 {
            open(with.path())
        } else {
            open(alone.path())
        };
        drop(kept_a);
        let (b, kept_b) = if round % 2 == 0 {
            open(alone.path())
        } else {
            open(with.path())
        };
        drop(kept_b);
        let (with_ms, alone_ms) = if round % 2 == 0 { (a, b) } else { (b, a) };
        open_with.push(with_ms);
        open_alone.push(alone_ms);
    }
    // A new process's start: this program run as a child that opens the cache, nothing in
    // its allocator before the load; the two in turn.
    let (mut start_with, mut start_alone) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            start_with.push(start_ms(with.path(), string_keys));
            start_alone.push(start_ms(alone.path(), string_keys));
        } else {
            start_alone.push(start_ms(alone.path(), string_keys));
            start_with.push(start_ms(with.path(), string_keys));
        }
    }
    Loads {
        start_with_journal: middle(start_with),
        start_snapshot: middle(start_alone),
        reload_with_journal: middle(with_journal),
        reload_snapshot: middle(snapshot_alone),
        open_with_journal: middle(open_with),
        open_snapshot: middle(open_alone),
        journal_len,
        snapshot_len,
    }
}

/// How long a new process (this program with `--open-child`) takes to open the cache in
/// `dir`, in ms, as it measures it.
fn start_ms(dir: &Path, string_keys: bool) -> f64 {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child.arg("--open-child").arg(dir);
    if string_keys {
        child.arg("--string-keys");
    }
    let out = child.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A new manager's open of the cache in `dir` (registration loads it): how long it took, in
/// ms, and the manager and cache, to be dropped after the timing.
fn open_timed<K: Key>(dir: &Path) -> (f64, (CacheManager, Cache<K, Vec<u8>>)) {
    let started = Instant::now();
    let manager = CacheManager::new("bench", dir);
    let cache = manager
        .register_custom_cache::<K, Vec<u8>>("big", manual())
        .unwrap();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(cache.len() as u64, ENTRIES);
    (ms, (manager, cache))
}

/// The child of [`start_ms`]: opens the cache in `dir` with keys `K` and prints the ms.
fn open_child<K: Key>(dir: &Path) {
    let (ms, _kept) = open_timed::<K>(dir);
    println!("{ms}");
    // Nothing to save: what is left is freeing, which the parent does not time.
    std::process::exit(0);
}

/// Medians of [`load_with_journal`], in ms, and the files' sizes.
struct Loads {
    /// A new process's open (the goal's figure).
    start_with_journal: f64,
    start_snapshot: f64,
    reload_with_journal: f64,
    reload_snapshot: f64,
    open_with_journal: f64,
    open_snapshot: f64,
    journal_len: u64,
    snapshot_len: u64,
}

fn main() {
    let rounds = benches::count_arg(15);
    let args: Vec<String> = std::env::args().collect();
    let string_keys = args.iter().any(|a| a == "--string-keys");
    if let Some(at) = args.iter().position(|a| a == "--open-child") {
        let dir = Path::new(&args[at + 1]);
        match string_keys {
            true => open_child::<String>(dir),
            false => open_child::<u64>(dir),
        }
    }
    let long = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(1_200);
    if args.iter().any(|a| a == "--load-only") {
        // The load alone: `--journal-rows N` (500,000 by default), `--string-keys` for keys
        // of `String` ("key-" and the number) instead of `u64`.
        let journal_rows = args
            .iter()
            .position(|a| a == "--journal-rows")
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(ENTRIES / 2);
        let loads = match string_keys {
            true => load_with_journal(rounds, journal_rows, |k| format!("key-{k}"), true),
            false => load_with_journal(rounds, journal_rows, |k| k, false),
        };
        let (start_with, start_alone) = (loads.start_with_journal, loads.start_snapshot);
        let (with, alone) = (loads.reload_with_journal, loads.reload_snapshot);
        let (open_with, open_alone) = (loads.open_with_journal, loads.open_snapshot);
        println!(
            "{{\"journal_rows\": {journal_rows}, \"start_with_journal_ms\": {start_with:.1}, \
             \"start_snapshot_ms\": {start_alone:.1}, \"start_ratio\": {:.3}, \
             \"reload_with_journal_ms\": {with:.1}, \
             \"reload_snapshot_ms\": {alone:.1}, \"reload_ratio\": {:.3}, \
             \"open_with_journal_ms\": {open_with:.1}, \"open_snapshot_ms\": {open_alone:.1}, \
             \"open_ratio\": {:.3}}}",
            start_with / start_alone,
            with / alone,
            open_with / open_alone
        );
        return;
    }
    let (append_ms, full_ms) = append_over_full(rounds);
    let (written, changes, saves) = write_amplification(60);
    let (long_written, long_changes, long_saves) = write_amplification(long);
    let loads = load_with_journal(rounds, ENTRIES / 2, |k| k, false);
    let (journal_load_ms, snapshot_load_ms) = (loads.start_with_journal, loads.start_snapshot);
    let (reload_with, reload_alone) = (loads.reload_with_journal, loads.reload_snapshot);
    let (journal_len, snapshot_len) = (loads.journal_len, loads.snapshot_len);
    println!(
        "{{\"rounds\": {rounds}, \"append_10_ms\": {append_ms:.3}, \"full_save_ms\": {full_ms:.1}, \
         \"append_over_full\": {:.5}, \"autosync_saves\": {saves}, \
         \"bytes_written\": {written}, \"change_bytes\": {changes}, \"write_amplification\": {:.3}, \
         \"long_seconds\": {long}, \"long_saves\": {long_saves}, \"long_bytes_written\": {long_written}, \
         \"long_change_bytes\": {long_changes}, \"long_write_amplification\": {:.3}, \
         \"journal_bytes\": {journal_len}, \"snapshot_bytes\": {snapshot_len}, \
         \"start_with_journal_ms\": {journal_load_ms:.1}, \"start_snapshot_ms\": {snapshot_load_ms:.1}, \
         \"start_ratio\": {:.3}, \"reload_with_journal_ms\": {reload_with:.1}, \
         \"reload_snapshot_ms\": {reload_alone:.1}, \"reload_ratio\": {:.3}}}",
        append_ms / full_ms,
        written as f64 / changes as f64,
        long_written as f64 / long_changes as f64,
        journal_load_ms / snapshot_load_ms,
        reload_with / reload_alone,
    );
}
