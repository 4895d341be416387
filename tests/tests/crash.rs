//! Crash safety: a process saving in a loop is killed with SIGKILL at random instants, in
//! appends to the journal and in compactions (whole ones, and background ones in any of
//! their phases, between their two renames included). After every kill the snapshot and its journal
//! hold exactly one complete snapshot that was saved (never older than the one found after the
//! previous kill: every change of a save that returned, none twice), and the temporary file a
//! kill leaves behind is removed when the cache is next opened.
//!
//! `CACHEMAN_CRASH_KILLS` sets the number of kills (50 by default; the ignored test runs 200).
//! `CACHEMAN_CRASH_SEED` replays the kill instants of a failed run, whose seed it prints.
#![cfg(unix)]

use std::path::Path;
use std::time::Duration;

use cacheman::CacheManager;
use tests::crash::{CACHE, MANAGER, snapshot_of};
use tests::support::XorShift;

const WRITER: &str = env!("CARGO_BIN_EXE_crash_writer");
/// Kill instants are drawn uniformly from this window after the writer reports ready.
const KILL_WINDOW_MICROS: u64 = 30_000;

#[test]
fn a_killed_writer_leaves_exactly_one_complete_snapshot() {
    let kills = tests::crash::kills_from_env(50);
    kill_repeatedly(kills);
}

#[test]
#[ignore = "the full 200 kills; run with --ignored"]
fn two_hundred_kills_leave_exactly_one_complete_snapshot() {
    kill_repeatedly(200);
}

fn kill_repeatedly(kills: u32) {
    let seed = tests::crash::seed_from_env();
    eprintln!("crash test: {kills} kills, CACHEMAN_CRASH_SEED={seed}");
    let mut random = XorShift(seed);
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join(MANAGER);
    let mut last: Option<u64> = None;
    let mut interrupted_saves = 0;
    let mut with_journal = 0;
    let mut between_renames = 0;
    for kill in 0..kills {
        let delay = Duration::from_micros(random.next_u64() % KILL_WINDOW_MICROS);
        tests::crash::run_and_kill(WRITER, dir.path(), delay);

        let orphans = temporaries(&cache_dir);
        if orphans > 0 {
            interrupted_saves += 1;
        }
        if cache_dir.join(format!("{CACHE}.journal")).exists() {
            with_journal += 1;
        }
        // A background compaction's new journal, not renamed yet: the kill fell after it
        // was written (and perhaps after the snapshot's rename).
        if cache_dir.join(format!("{CACHE}.journal.next")).exists() {
            between_renames += 1;
        }
        // Opening the cache cleans orphans and loads (a corrupt file would only be a warning
        // there); the reload reports a corrupt file as an error.
        let manager = CacheManager::new(MANAGER, dir.path());
        let cache = manager.register_cache::<u32, u64>(CACHE).unwrap();
        if let Err(err) = cache.reload() {
            panic!("kill {kill} (seed {seed}): the file does not load: {err}");
        }
        let rows: Vec<(u32, u64)> = cache.snapshot().into_iter().collect();
        let found = snapshot_of(&rows).unwrap_or_else(|reason| {
            panic!("kill {kill} (seed {seed}): not one complete snapshot: {reason}")
        });
        assert!(
            found >= last,
            "kill {kill} (seed {seed}): snapshot {found:?} is older than {last:?}, saved before"
        );
        assert_eq!(
            temporaries(&cache_dir),
            0,
            "kill {kill} (seed {seed}): temporary files survived the next open"
        );
        last = found;
    }
    assert!(
        !cache_dir.join(format!("{CACHE}.journal.next")).exists(),
        "the last open left a compaction's new journal beside the cache"
    );
    eprintln!(
        "crash test: {kills} kills, {interrupted_saves} left a temporary file, {with_journal} a \
         journal, {between_renames} a compaction's new journal not renamed yet, last snapshot \
         {last:?}"
    );
    assert!(
        with_journal > 0,
        "no kill left a journal: appends went untested"
    );
    assert!(
        last.is_some_and(|i| i > 0),
        "the writer never saved twice: the kills tested nothing"
    );
}

fn temporaries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
            .count()
    })
}
