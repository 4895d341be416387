//! `#[cached]` in one line: run it twice, the second run answers from the cache file.
//!
//! ```text
//! cargo run --example fib
//! cargo run --example fib    # every answer read from <cache dir>/general_cache/*.cache
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use cacheman::cached;

static BODY_RUNS: AtomicU64 = AtomicU64::new(0);

/// Fibonacci by its definition. The recursive calls go through the cache too, so each `n` is
/// computed once, ever: this run, or an earlier one.
#[cached]
fn fib(n: u64) -> u128 {
    BODY_RUNS.fetch_add(1, Ordering::Relaxed);
    if n < 2 {
        u128::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// The same numbers by the naive double recursion, which takes exponential time: only the
/// outer call is cached, which is exactly what makes a second run fast.
#[cached]
fn naive_fib(n: u32) -> u64 {
    fn naive(n: u32) -> u64 {
        if n < 2 {
            u64::from(n)
        } else {
            naive(n - 1) + naive(n - 2)
        }
    }
    naive(n)
}

fn main() -> Result<(), cacheman::Error> {
    env_logger::init();
    let started = Instant::now();
    let value = fib(150);
    println!(
        "fib(150) = {value} ({} bodies ran, {:.1?})",
        BODY_RUNS.load(Ordering::Relaxed),
        started.elapsed()
    );

    let started = Instant::now();
    let hit = naive_fib_cache().contains_key(&36);
    let value = naive_fib(36);
    println!(
        "naive_fib(36) = {value} ({}, {:.1?})",
        if hit { "from the cache" } else { "computed" },
        started.elapsed()
    );

    // Autosync would save at exit anyway; saving here shows where the files are.
    let manager = cacheman::get_cache_manager();
    manager.save_all_cache_contents()?;
    println!("saved in {}; run me again.", manager.directory().display());
    Ok(())
}
