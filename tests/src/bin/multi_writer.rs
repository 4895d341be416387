//! A process that shares a cache directory with others, for the multi-process tests.
//!
//! ```text
//! multi_writer write <base dir> <writer id> <keys>   # inserts id*1e6+i -> id, saving every 10
//! multi_writer invalidate <base dir> <cache>         # invalidates <cache> and its dependents
//! ```

use std::process::ExitCode;

use cacheman::CacheManager;

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
        _ => {
            eprintln!("usage: multi_writer write DIR ID KEYS | multi_writer invalidate DIR CACHE");
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
