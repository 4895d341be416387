//! A process that shares a cache directory with others, for the multi-process tests.
//!
//! ```text
//! multi_writer write <base dir> <writer id> <keys>   # inserts id*1e6+i -> id, saving every 10
//! multi_writer invalidate <base dir> <cache>         # invalidates <cache> and its dependents
//! multi_writer hold <base dir>     # saves `locked`, stopping under the save lock: prints
//!                                  # `holding`, waits for a line on stdin, prints `saved`
//! multi_writer save <base dir> <key> # prints `ready`, waits for a line on stdin, saves <key>
//!                                    # into `locked`, prints `saved`
//! multi_writer keys <base dir>     # prints the keys `locked` holds, in order, one a line
//! ```

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use cacheman::{AutoSync, Cache, CacheManager, CacheOptions};
use serde::{Deserialize, Serialize, Serializer};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["write", dir, id, keys] => write(dir, id.parse().unwrap_or(0), keys.parse().unwrap_or(0)),
        ["invalidate", dir, cache] => invalidate(dir, cache),
        ["hold", dir] => hold(dir),
        ["save", dir, key] => save(dir, key.parse().unwrap_or(0)),
        ["keys", dir] => keys(dir),
        _ => {
            eprintln!(
                "usage: multi_writer write DIR ID KEYS | invalidate DIR CACHE | hold DIR | \
                 save DIR KEY | keys DIR"
            );
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("multi_writer: {err}");
            ExitCode::FAILURE
        }
    }
}

fn write(dir: &str, id: u64, keys: u64) -> Result<(), cacheman::Error> {
    let manager = CacheManager::new("shared", dir);
    let cache = manager.register_cache::<u64, u64>("union")?;
    for i in 0..keys {
        cache.insert(id * 1_000_000 + i, id);
        if i % 10 == 9 {
            cache.save()?;
        }
    }
    cache.save()
}

fn invalidate(dir: &str, name: &str) -> Result<(), cacheman::Error> {
    let manager = CacheManager::new("shared", dir);
    manager.register_cache::<u64, u64>(name)?;
    manager.invalidate_cache(name)
}

/// The key whose value stops a save in a `hold` process.
const HOLD: u64 = u64::MAX;
/// Set in a `hold` process once it saves.
static HOLDING: AtomicBool = AtomicBool::new(false);

/// A value that, under key [`HOLD`] in a `hold` process, stops its save half-way through
/// encoding (so under the save lock, which a save takes before it copies the entries) until a
/// line comes on stdin.
#[derive(Clone, Deserialize)]
struct Gate(u64);

impl Serialize for Gate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 == HOLD && HOLDING.swap(false, Ordering::SeqCst) {
            say("holding");
            wait_for_a_line();
        }
        serializer.serialize_u64(self.0)
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn wait_for_a_line() {
    let _ = std::io::stdin().lock().read_line(&mut String::new());
}

fn locked(dir: &str) -> Result<Cache<u64, Gate>, cacheman::Error> {
    let options = CacheOptions::new().autosync(AutoSync::disabled());
    CacheManager::new("shared", dir).register_custom_cache("locked", options)
}

fn hold(dir: &str) -> Result<(), cacheman::Error> {
    let cache = locked(dir)?;
    cache.insert(HOLD, Gate(HOLD));
    HOLDING.store(true, Ordering::SeqCst);
    cache.save()?;
    say("saved");
    Ok(())
}

fn save(dir: &str, key: u64) -> Result<(), cacheman::Error> {
    let cache = locked(dir)?;
    say("ready");
    wait_for_a_line();
    cache.insert(key, Gate(key));
    cache.save()?;
    say("saved");
    Ok(())
}

fn keys(dir: &str) -> Result<(), cacheman::Error> {
    let mut keys: Vec<u64> = locked(dir)?.snapshot().into_keys().collect();
    keys.sort_unstable();
    for key in keys {
        say(&key.to_string());
    }
    Ok(())
}
