//! Hits of one kind in a loop over 1,024 warm `u64` keys, and nothing else: `hit_loop` for
//! each kind of cache, to count a hit's instructions with callgrind. Bounded and expiring hits
//! (issue 18) were judged with it:
//!
//! ```text
//! cargo build --release -p benches --bin hit_kinds
//! valgrind --tool=callgrind target/release/hit_kinds 0 KIND      # start-up alone
//! valgrind --tool=callgrind target/release/hit_kinds 2000 KIND   # + 2,048,000 hits
//! ```
//!
//! (Instructions per hit = difference / 2,048,000.) `KIND` is one of:
//!
//! - `fn` (the default): a `#[cached(persistent = false)] fn(u64) -> u64` (with four such
//!   functions of one key and value type in the program, the compiler may keep the shared
//!   lookup out of line where `hit_loop`, with one, inlines it: judge a plain hit on
//!   `hit_loop`);
//! - `fn_capacity`: the same with `capacity = 10_000`, as `bounded_ratio` times it;
//! - `fn_ttl`: the same with `ttl_secs = 3600`;
//! - `cached_size`: the `cached` crate's `#[cached(size = 10_000)]`, its peer in `bounded_ratio`;
//! - `get_plain`, `get_bounded`, `get_expiring`: `Cache::get` on a memory cache without
//!   limits, with `capacity(10_000)`, with `ttl(1 h)` on the system clock (`bounded_ratio`'s
//!   caches).
//!
//! The instructions a hit costs depend a little on the run: keys collide in the tables by a
//! per-process seed (a few tenths of an instruction). To compare with another commit, build
//! the same file against that commit's `cacheman`.

use std::hint::black_box;
use std::time::Duration;

use benches::HOT_KEYS;
use cacheman::{Cache, CacheManager, CacheOptions};

#[cacheman::cached(persistent = false)]
fn square(n: u64) -> u64 {
    n.wrapping_mul(n)
}

#[cacheman::cached(persistent = false, capacity = 10_000)]
fn bounded_square(n: u64) -> u64 {
    n.wrapping_mul(n)
}

#[cacheman::cached(persistent = false, ttl_secs = 3600)]
fn expiring_square(n: u64) -> u64 {
    n.wrapping_mul(n)
}

#[cached::proc_macro::cached(size = 10_000)]
fn bounded_square_peer(n: u64) -> u64 {
    n.wrapping_mul(n)
}

/// `rounds` passes over the hot keys, each key looked up by `$hit`, after one pass to fill
/// the cache. A macro, not a generic function: the loop then calls a `#[cached]` function as
/// a user's code does, and the compiler inlines it (or not) as it would there.
macro_rules! hits {
    ($rounds:expr, $hit:expr) => {{
        for k in 0..HOT_KEYS {
            $hit(k);
        }
        let mut sum = 0u64;
        for _ in 0..$rounds {
            for k in 0..HOT_KEYS {
                sum = sum.wrapping_add($hit(black_box(k)));
            }
        }
        sum
    }};
}

fn memory_cache(dir: &std::path::Path, options: CacheOptions) -> Cache<u64, u64> {
    let manager = CacheManager::new("hit_loop", dir);
    let cache = manager
        .register_custom_cache::<u64, u64>("squares", options.persistent(false))
        .expect("a memory cache");
    cache.extend((0..HOT_KEYS).map(|k| (k, k.wrapping_mul(k))));
    cache
}

/// Hits of `cache` through `Cache::get`.
#[inline(never)]
fn get_hits(rounds: u64, cache: Cache<u64, u64>) -> u64 {
    hits!(rounds, |k| cache.get(&k).unwrap_or_default())
}

fn main() {
    let rounds = benches::count_arg(20_000) as u64;
    let kind = std::env::args().nth(2).unwrap_or_else(|| "fn".into());
    let dir = benches::private_cache_dir();
    let memory_cache = |options| memory_cache(dir.path(), options);
    let sum = match kind.as_str() {
        "fn" => hits!(rounds, square),
        "fn_capacity" => hits!(rounds, bounded_square),
        "fn_ttl" => hits!(rounds, expiring_square),
        "cached_size" => hits!(rounds, bounded_square_peer),
        "get_plain" => get_hits(rounds, memory_cache(CacheOptions::new())),
        "get_bounded" => get_hits(rounds, memory_cache(CacheOptions::new().capacity(10_000))),
        "get_expiring" => {
            let hour = Duration::from_secs(3600);
            get_hits(rounds, memory_cache(CacheOptions::new().ttl(hour)))
        }
        other => {
            eprintln!(
                "unknown kind {other:?}: fn, fn_capacity, fn_ttl, cached_size, get_plain, \
                 get_bounded or get_expiring"
            );
            std::process::exit(2);
        }
    };
    println!("{sum}");
}
