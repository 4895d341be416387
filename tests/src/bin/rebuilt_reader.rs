//! A second process for the rebuild tests: opens cache `rebuilt` of manager `rebuilds` with a
//! builder of its own and prints what it holds, and whether its builder was asked.
//!
//! ```text
//! rebuilt_reader <base dir>     # prints `builder_ran=false entries=1:10,2:20`
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use cacheman::{CacheManager, Contents};

static BUILDER_RAN: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: rebuilt_reader DIR");
        return ExitCode::from(2);
    };
    let manager = CacheManager::new("rebuilds", dir);
    let cache = manager
        .cache_builder::<u32, u32>("rebuilt")
        .builder(|_| {
            BUILDER_RAN.store(true, Ordering::SeqCst);
            Ok(Contents::from([(99, 990)]))
        })
        .register();
    let cache = match cache {
        Ok(cache) => cache,
        Err(err) => {
            eprintln!("rebuilt_reader: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut entries: Vec<(u32, u32)> = cache.snapshot().into_iter().collect();
    entries.sort();
    let entries: Vec<String> = entries.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    println!(
        "builder_ran={} entries={}",
        BUILDER_RAN.load(Ordering::SeqCst),
        entries.join(",")
    );
    ExitCode::SUCCESS
}
