//! A process that records per-entry dependencies and saves them in a loop until it is killed,
//! for the dependency graph's crash-safety test (`tests/tests/graph_crash.rs`).
//!
//! ```text
//! graph_crash_writer <base dir>
//! ```
//!
//! Round `i` sets `raw[k]` to `round_value(i, k)` for 64 keys and recomputes `derived[k]`
//! (which reads `raw[k]`: its value is `raw[k] + 1`), so each round changes 128 nodes of the
//! graph; then it saves both caches: the graph first (a frame appended to `.graph.journal`),
//! then each cache. Every 4th round first writes the graph whole (`compact_graph`, a
//! compaction), so kills land in appends and compactions alike. It resumes after the last
//! round it finds and prints `ready` once registered.

use std::io::Write;
use std::process::ExitCode;

use cacheman::{AutoSync, CacheManager, CacheOptions};

/// The manager of the graph under test.
const MANAGER: &str = "graph_crash";
const KEYS: u32 = 64;

fn round_value(i: u64, key: u32) -> u64 {
    (i << 32) | u64::from(key)
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: graph_crash_writer DIR");
        return ExitCode::from(2);
    };
    match run(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("graph_crash_writer: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &str) -> Result<(), cacheman::Error> {
    let manager = CacheManager::new(MANAGER, dir);
    let options = CacheOptions::new().autosync(AutoSync::disabled());
    let raw = manager.register_custom_cache::<u32, u64>("raw", options.clone())?;
    let derived = manager.register_custom_cache::<u32, u64>("derived", options.clone())?;
    // The last round begun, apart from the graph (nothing reads it): `raw`'s rows may be
    // dropped at load as older than the graph's record, which would start the rounds again.
    let progress = manager.register_custom_cache::<u32, u64>("progress", options)?;
    let mut next = progress.get(&0).unwrap_or(0) + 1;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "ready");
    let _ = stdout.flush();
    loop {
        for key in 0..KEYS {
            raw.insert(key, round_value(next, key));
            derived.get_or_insert_with(key, || raw.get(&key).map_or(0, |r| r + 1));
        }
        progress.insert(0, next);
        if next % 4 == 0 {
            manager.compact_graph()?;
        }
        manager.save_all_cache_contents()?;
        next += 1;
    }
}
