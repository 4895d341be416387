//! A process that saves one cache in a loop until it is killed, for the crash-safety test.
//!
//! ```text
//! crash_writer <base dir>
//! ```
//!
//! Snapshot `i` holds keys `0..batch_len(i)`, each with the value `snapshot_value(i, key)`, so
//! a file that a kill left behind is checked to be exactly one complete snapshot. The writer
//! resumes after whatever snapshot it finds, prints `ready` once registered, then saves
//! snapshots `i + 1, i + 2, ...` forever: each save appends the changes to the journal, and
//! every eighth is a compaction (a whole snapshot, `Cache::compact`); saves also start
//! compactions in the background once the journal outgrows the snapshot and 4 KiB (every few
//! saves), which run while the next saves append: kills land in their three phases and
//! between their two renames too.

use std::io::Write;
use std::process::ExitCode;

use cacheman::{AutoSync, CacheManager, CacheOptions};
use tests::crash::{CACHE, MANAGER, batch_len, snapshot_of};

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: crash_writer DIR");
        return ExitCode::from(2);
    };
    match run(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("crash_writer: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &str) -> Result<(), cacheman::Error> {
    let manager = CacheManager::new(MANAGER, dir);
    // Only the explicit saves below may write: an automatic save between a batch's removals
    // and its inserts would store half a snapshot, which is fine for a cache but not for this
    // test's check.
    let options = CacheOptions::new()
        .autosync(AutoSync::disabled())
        .compact_from(tests::crash::COMPACT_FROM);
    let cache = manager.register_custom_cache::<u32, u64>(CACHE, options)?;
    let resumed = snapshot_of(&cache.snapshot().into_iter().collect::<Vec<_>>());
    let mut next = match resumed {
        Ok(Some(i)) => i + 1,
        _ => 0,
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "ready");
    let _ = stdout.flush();
    loop {
        let len = batch_len(next);
        // Drop the keys beyond this snapshot's length (the length cycles back down).
        for key in len..batch_len(next.saturating_sub(1)).max(len) {
            cache.remove(&key);
        }
        cache.extend((0..len).map(|key| (key, tests::crash::snapshot_value(next, key))));
        if next % 8 == 7 {
            cache.compact()?;
        } else {
            cache.save()?;
        }
        next += 1;
    }
}
