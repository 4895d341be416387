//! Run it twice: the first run computes and saves, the second answers from disk.
//!
//! ```text
//! cargo run --example quickstart
//! cargo run --example quickstart   # instant: read from the cache file
//! ```

use std::time::Instant;

use cacheman::get_cache_manager;

/// Something worth caching: the number of primes below `n`, by trial division.
fn count_primes_below(n: u64) -> u64 {
    (2..n)
        .filter(|&k| (2..).take_while(|d| d * d <= k).all(|d| k % d != 0))
        .count() as u64
}

fn main() -> Result<(), cacheman::Error> {
    env_logger::init();
    let manager = get_cache_manager();
    let primes = manager.retrieve_cache::<u64, u64>("primes_below")?;
    println!(
        "cache `{}` of manager `{}`: {} entries loaded from {}",
        primes.name(),
        manager.name(),
        primes.len(),
        manager.cache_file_path(primes.name())?.display()
    );

    for n in [100_000, 200_000, 400_000] {
        let started = Instant::now();
        let hit = primes.contains_key(&n);
        let count = primes.get_or_insert_with(n, || count_primes_below(n));
        println!(
            "primes below {n:>7}: {count:>6}  ({}, {:.1?})",
            if hit { "from the cache" } else { "computed" },
            started.elapsed()
        );
    }

    primes.save()?;
    let stats = primes.stats();
    println!(
        "saved; this run: {} hits, {} misses. Run me again to see every answer come from disk.",
        stats.hits, stats.misses
    );
    Ok(())
}
