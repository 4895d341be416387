//! A process standing for one host of a fleet sharing caches on Redis, driven by
//! tests/tests/redis_processes.rs and the other Redis tests:
//! `redis_worker <url> <manager> <marks dir> <command> [args]`.
//!
//! Its cache `squares` (u64 -> u64) is on the server at `<url>`; each run of the body leaves a
//! file `<marks dir>/<key>.<pid>`, so the test counts body runs across processes. Environment:
//! `LEASE_MS` (default 30000), `WAIT_MS` (how long to wait for another's lease; default: as
//! long as it is held), `LOCAL_COPY` (`1`: keep a local copy).
//!
//! Commands:
//! - `compute <from> <to> [go file]`: waits for the go file (if given), computes the keys,
//!   prints `done <store errors>`.
//! - `hold <key>`: computes `key` with a body that marks `<marks dir>/started` and never ends
//!   (the test kills the process: a dead lease holder).
//! - `slow <key> <finish file>`: computes `key` with a body that marks `<marks dir>/started`,
//!   then waits for the finish file (a computation as long as the test wants), prints
//!   `done`.
//! - `invalidate [<root>]`: invalidates the cache; with a root, declares that `squares`
//!   depends on the cache `<root>` and invalidates that one (and so its dependents).
//! - `derive <k>`: `derived(k) = bases(k) + 1` through two caches on the server, where
//!   `bases(k)` reads the number in `<marks dir>/source`; prints `<value> <1 if derived's body
//!   ran> <1 if bases' body ran>`.
//! - `invalidate-base <k>`: `invalidate_key(k)` on `bases`.
//! - `invalidate-bases`: `invalidate_cache("bases")` (no dependency declared on it).
//! - `macro <n>`: calls the `#[cached(store = "redis")]` function `cube(n)` (server from
//!   `CACHEMAN_REDIS_URL`), prints `<value> <1 if the body ran>`.
//! - `serve`: reads `get <key>` (prints `<value> <1 if the body ran>`), `errors` (prints
//!   the failure count) and `quit` from stdin.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cacheman::{Cache, CacheManager, CacheOptions, Redis};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, manager, marks, command, rest @ ..] = args.as_slice() else {
        eprintln!("usage: redis_worker <url> <manager> <marks dir> <command> [args]");
        std::process::exit(2);
    };
    let marks = PathBuf::from(marks);
    let env_ms = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut redis = Redis::new(url.as_str())
        .lease(Duration::from_millis(env_ms("LEASE_MS", 30_000)))
        .retry_after(Duration::from_millis(100))
        .command_timeout(Duration::from_millis(500))
        .local_copy(env_ms("LOCAL_COPY", 0) == 1);
    if let Ok(wait) = std::env::var("WAIT_MS") {
        redis = redis.wait(Duration::from_millis(wait.parse().expect("WAIT_MS in ms")));
    }
    let manager = CacheManager::new(manager, marks.join("files")).with_redis(redis);
    let cache = manager
        .register_custom_cache::<u64, u64>("squares", CacheOptions::new())
        .expect("the cache registers");
    match (command.as_str(), rest) {
        ("compute", [from, to, go @ ..]) => {
            if let [go] = go {
                wait_for(Path::new(go));
            }
            let (from, to): (u64, u64) = (from.parse().unwrap(), to.parse().unwrap());
            for key in from..to {
                assert_eq!(square(&cache, &marks, key).0, key * key);
            }
            println!("done {}", cache.stats().store_errors);
        }
        ("hold", [key]) => {
            let key: u64 = key.parse().unwrap();
            cache.get_or_insert_with(key, || {
                std::fs::write(marks.join("started"), b"").unwrap();
                loop {
                    std::thread::park(); // until the test kills this process
                }
            });
        }
        ("slow", [key, finish]) => {
            let key: u64 = key.parse().unwrap();
            let value = cache.get_or_insert_with(key, || {
                std::fs::write(marks.join("started"), b"").unwrap();
                wait_for(Path::new(finish));
                mark_run(&marks, key);
                key * key
            });
            assert_eq!(value, key * key);
            println!("done");
        }
        ("derive", [k]) => {
            let k: u64 = k.parse().unwrap();
            let bases = manager.register_cache::<u64, u64>("bases").unwrap();
            let derived = manager.register_cache::<u64, u64>("derived").unwrap();
            let (mut derived_ran, mut base_ran) = (false, false);
            let value = derived.get_or_insert_with(k, || {
                derived_ran = true;
                let base = bases.get_or_insert_with(k, || {
                    base_ran = true;
                    let source = std::fs::read_to_string(marks.join("source")).unwrap();
                    source.trim().parse::<u64>().unwrap() * k
                });
                base + 1
            });
            println!("{value} {} {}", u8::from(derived_ran), u8::from(base_ran));
        }
        ("invalidate-base", [k]) => {
            let bases = manager.register_cache::<u64, u64>("bases").unwrap();
            bases.invalidate_key(&k.parse::<u64>().unwrap()).unwrap();
        }
        ("invalidate-bases", []) => {
            manager.register_cache::<u64, u64>("bases").unwrap();
            manager.invalidate_cache("bases").expect("invalidated");
        }
        ("macro", [n]) => {
            let n: u64 = n.parse().unwrap();
            let ran_before = CUBES_RUN.load(std::sync::atomic::Ordering::SeqCst);
            let value = cube(n);
            let ran = CUBES_RUN.load(std::sync::atomic::Ordering::SeqCst) > ran_before;
            println!("{value} {}", u8::from(ran));
        }
        ("invalidate", []) => manager.invalidate_cache("squares").expect("invalidated"),
        ("invalidate", [root]) => {
            // `squares` depends on `root` (a cache this process never registers).
            manager
                .register_dependent_cache(root, "squares")
                .expect("the edge is declared");
            manager.invalidate_cache(root).expect("invalidated");
        }
        ("serve", []) => {
            println!("ready");
            for line in std::io::stdin().lock().lines() {
                let line = line.unwrap();
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    ["get", key] => {
                        let (value, ran) = square(&cache, &marks, key.parse().unwrap());
                        println!("{value} {}", u8::from(ran));
                    }
                    ["errors"] => println!("{}", cache.stats().store_errors),
                    ["quit"] => break,
                    other => panic!("unknown command {other:?}"),
                }
            }
        }
        other => panic!("unknown command {other:?}"),
    }
}

static CUBES_RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A `#[cached]` function on the server of `CACHEMAN_REDIS_URL`.
#[cacheman::cached(store = "redis", manager = "redis_macro")]
fn cube(n: u64) -> u64 {
    CUBES_RUN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    n * n * n
}

/// `key * key` through the cache, and whether the body ran here.
fn square(cache: &Cache<u64, u64>, marks: &Path, key: u64) -> (u64, bool) {
    let mut ran = false;
    let value = cache.get_or_insert_with(key, || {
        ran = true;
        mark_run(marks, key);
        key * key
    });
    (value, ran)
}

/// Counts one run of the body for `key` in this process (`<marks>/<key>.<pid>`).
fn mark_run(marks: &Path, key: u64) {
    let mark = marks.join(format!("{key}.{}", std::process::id()));
    let runs = std::fs::read_to_string(&mark).unwrap_or_default();
    std::fs::write(&mark, format!("{runs}x")).unwrap();
}

/// Waits for `go` to exist (all workers start their herd together), for at most two minutes.
fn wait_for(go: &Path) {
    for _ in 0..120_000 {
        if go.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("{} never appeared", go.display());
}
