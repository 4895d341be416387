//! Caches shared by many machines, on Redis (feature `redis`). Start a server and point the
//! example at it, then run it in two terminals (two hosts) at once:
//!
//! ```text
//! redis-server --port 6379 --save "" --appendonly no      # or any server you have
//! export CACHEMAN_REDIS_URL=redis://127.0.0.1:6379/
//! cargo run -p examples --example redis_shared --features redis
//! ```
//!
//! The first run computes each report once across all the processes running it (the others
//! wait for its lease and take its value); later runs, on any machine that reaches the server,
//! compute nothing. `invalidate` as an argument bumps the cache's generation: every host
//! computes again at its next lookup.

use std::time::{Duration, Instant};

use cacheman::{CacheManager, Redis, cached};

/// A slow computation worth sharing. `store = "redis"` keeps its cache on the server named by
/// `CACHEMAN_REDIS_URL`, under the manager and cache names, with its types and body
/// fingerprinted in every key.
#[cached(store = "redis", manager = "redis_example")]
fn report(day: u32) -> String {
    std::thread::sleep(Duration::from_millis(200));
    format!("report of day {day}: {} sales", day * 37 % 101)
}

fn main() -> Result<(), cacheman::Error> {
    env_logger::init();
    let Ok(url) = std::env::var("CACHEMAN_REDIS_URL") else {
        eprintln!(
            "set CACHEMAN_REDIS_URL to a Redis server, e.g.\n  redis-server --port 6379 --save \"\" \
             --appendonly no &\n  export CACHEMAN_REDIS_URL=redis://127.0.0.1:6379/"
        );
        std::process::exit(2);
    };

    if std::env::args().any(|arg| arg == "invalidate") {
        cacheman::get_cache_manager_named("redis_example").invalidate_cache("report")?;
        println!("invalidated `report` on {url}: every host computes again");
        return Ok(());
    }

    let started = Instant::now();
    for day in 1..=5 {
        println!("{}", report(day));
    }
    println!("five reports in {:?}", started.elapsed());

    // A manager set up in code: every persistent cache it registers lives on the server, with
    // a local copy for hits as fast as a memory cache's.
    let dir = std::env::temp_dir().join("cacheman-redis-example");
    let manager =
        CacheManager::new("redis_example_code", dir).with_redis(Redis::new(url).local_copy(true));
    let lengths = manager.register_cache::<String, usize>("lengths")?;
    let len = lengths.get_or_insert_with("shared".into(), || "shared".len());
    println!("len = {len}; {:?}", lengths.stats());
    Ok(())
}
