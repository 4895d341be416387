//! Workload 9 of BENCHMARKS.md: caches on a Redis server, cacheman against the `cached`
//! crate's `RedisCache` on the same server, measured in turns (the order rotates every round)
//! so that the ratios mean something on a shared machine. Needs `CACHEMAN_REDIS_URL` (a
//! server on this machine; `benches/run.sh` and `.ci/run` start one); without it, prints a
//! JSON object saying it was skipped.
//!
//! - hit: a lookup of a key the server holds, cacheman without a local copy (one Lua script)
//!   and with one (memory), against `cached`'s `cache_get` (one `GET`);
//! - miss + store: a new key computed and stored, cacheman's `get_or_insert_with` (fetch,
//!   lease, put) against `cached`'s `cache_get` + `cache_set` (what its `#[io_cached]` does);
//! - herd: 4 processes compute the same 1,000 keys at once; the total body runs of each (the
//!   goal for cacheman: exactly 1,000).
//!
//! `cargo run --release -p benches --bin redis_ratio [ROUNDS]` prints one JSON object.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cached::{IOCached, RedisCache};
use cacheman::{Cache, CacheManager, CacheOptions, Redis};

const KEYS: u64 = 1_000;
const HERD: usize = 4;

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Nanoseconds per call of `op` over `n` calls.
fn per_op(n: u64, mut op: impl FnMut(u64)) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        op(i);
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

fn cacheman_cache(
    url: &str,
    manager: &str,
    local_copy: bool,
) -> (tempfile::TempDir, Cache<u64, u64>) {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::new(url).local_copy(local_copy);
    let manager = CacheManager::new(manager, dir.path()).with_redis(redis);
    let cache = manager
        .register_custom_cache::<u64, u64>("squares", CacheOptions::new())
        .unwrap();
    (dir, cache)
}

fn cached_cache(url: &str, prefix: &str) -> RedisCache<u64, u64> {
    RedisCache::new(prefix, Duration::from_secs(3600))
        .set_connection_string(url)
        .build()
        .expect("cached's RedisCache connects")
}

/// A value worth caching: a few microseconds of work.
fn body(key: u64) -> u64 {
    let mut x = key;
    for _ in 0..2_000 {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    x
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, url, name, go] = args.as_slice() {
        return herd_child(mode, url, name, Path::new(go));
    }
    let Ok(url) = std::env::var("CACHEMAN_REDIS_URL") else {
        println!(
            r#"{{"skipped": "CACHEMAN_REDIS_URL is not set: no Redis server to measure on"}}"#
        );
        return;
    };
    let rounds = benches::count_arg(7);
    let run = std::process::id();

    // Hits: both sides hold the same 1,000 keys.
    let (_d1, remote) = cacheman_cache(&url, &format!("bench_hit_{run}"), false);
    let (_d2, local) = cacheman_cache(&url, &format!("bench_local_{run}"), true);
    let theirs = cached_cache(&url, &format!("bench_cached_{run}"));
    for k in 0..KEYS {
        remote.insert(k, k);
        local.insert(k, k);
        theirs.cache_set(k, k).unwrap();
    }
    // The local copy keeps entries once its subscription is up.
    let started = Instant::now();
    while !local.contains_key(&0) && started.elapsed() < Duration::from_secs(10) {
        local.get(&0);
        local.insert(0, 0);
        std::thread::sleep(Duration::from_millis(5));
    }
    for k in 0..KEYS {
        assert_eq!(local.get(&k), Some(k));
    }

    let (mut hit_remote, mut hit_local, mut hit_cached) = (vec![], vec![], vec![]);
    let (mut miss_ours, mut miss_cached) = (vec![], vec![]);
    let mut fresh = 1_000_000u64;
    for round in 0..rounds {
        for turn in 0..5 {
            match (turn + round) % 5 {
                0 => hit_remote.push(per_op(2_000, |i| {
                    assert!(remote.get(&(i % KEYS)).is_some());
                })),
                1 => hit_local.push(per_op(2_000_000, |i| {
                    std::hint::black_box(local.get(&(i % KEYS)));
                })),
                2 => hit_cached.push(per_op(2_000, |i| {
                    assert!(theirs.cache_get(&(i % KEYS)).unwrap().is_some());
                })),
                3 => miss_ours.push(per_op(1_000, |_| {
                    fresh += 1;
                    remote.get_or_insert_with(fresh, || body(fresh));
                })),
                _ => miss_cached.push(per_op(1_000, |_| {
                    fresh += 1;
                    if theirs.cache_get(&fresh).unwrap().is_none() {
                        theirs.cache_set(fresh, body(fresh)).unwrap();
                    }
                })),
            }
        }
    }
    let ours_runs = herd("cacheman", &url, &format!("bench_herd_{run}"));
    let their_runs = herd("cached", &url, &format!("bench_herd_cached_{run}"));
    let (hr, hl, hc) = (median(&hit_remote), median(&hit_local), median(&hit_cached));
    let (mo, mc) = (median(&miss_ours), median(&miss_cached));
    println!(
        "{{\"rounds\": {rounds}, \"hit_ns\": {hr:.0}, \"hit_local_ns\": {hl:.1}, \
         \"cached_hit_ns\": {hc:.0}, \"hit_ratio\": {:.3}, \"miss_store_ns\": {mo:.0}, \
         \"cached_miss_store_ns\": {mc:.0}, \"miss_ratio\": {:.3}, \"herd_processes\": {HERD}, \
         \"herd_keys\": {KEYS}, \"herd_body_runs\": {ours_runs}, \"cached_herd_body_runs\": {their_runs}}}",
        hr / hc,
        mo / mc
    );
}

/// Starts `HERD` processes on the same keys at once; their total body runs.
fn herd(mode: &str, url: &str, name: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let children: Vec<_> = (0..HERD)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([mode, url, name])
                .arg(&go)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::fs::write(&go, b"").unwrap();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse::<usize>()
                .unwrap()
        })
        .sum()
}

/// One process of a herd: waits for the go file, computes every key, prints its body runs.
fn herd_child(mode: &str, url: &str, name: &str, go: &Path) {
    let mut runs = 0;
    let wait = Instant::now();
    while !go.exists() {
        assert!(wait.elapsed() < Duration::from_secs(60), "no go file");
        std::thread::sleep(Duration::from_millis(1));
    }
    match mode {
        "cacheman" => {
            let (_dir, cache) = cacheman_cache(url, name, false);
            for k in 0..KEYS {
                cache.get_or_insert_with(k, || {
                    runs += 1;
                    body(k)
                });
            }
        }
        _ => {
            let cache = cached_cache(url, name);
            for k in 0..KEYS {
                if cache.cache_get(&k).unwrap().is_none() {
                    runs += 1;
                    cache.cache_set(k, body(k)).unwrap();
                }
            }
        }
    }
    println!("{runs}");
}
