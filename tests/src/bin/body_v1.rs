//! The first version of a program whose cached functions `body_v2` changes: `compute`'s body
//! and `versioned`'s `version`. Prints "derived = D, compute = X, versioned = Y, body runs: R" and saves.

use std::sync::atomic::{AtomicU64, Ordering};

use cacheman::cached;

static RUNS: AtomicU64 = AtomicU64::new(0);

#[cached(name = "compute")]
fn compute(x: u32) -> u32 {
    RUNS.fetch_add(1, Ordering::Relaxed);
    x + 1
}

/// Reads `compute` and declares nothing: the recorded dependency alone must bring it up to
/// date when `compute`'s body changes.
#[cached(name = "derived")]
fn derived(x: u32) -> u32 {
    RUNS.fetch_add(1, Ordering::Relaxed);
    compute(x) * 100
}

#[cached(name = "versioned", version = 1)]
fn versioned(x: u32) -> u32 {
    RUNS.fetch_add(1, Ordering::Relaxed);
    x * 10
}

fn main() -> Result<(), cacheman::Error> {
    let (d, a, b) = (derived(1), compute(1), versioned(1));
    cacheman::get_cache_manager().save_all_cache_contents()?;
    println!(
        "derived = {d}, compute = {a}, versioned = {b}, body runs: {}",
        RUNS.load(Ordering::Relaxed)
    );
    Ok(())
}
