//! cacheman's first demo: `#[cached]` functions whose results outlive the process, and the
//! dependencies between their entries, recorded as they run. Run it twice:
//!
//! ```text
//! cargo run --example quickstart   # computes, and saves at exit
//! cargo run --example quickstart   # every answer from disk; then invalidates one entry of
//!                                  # `primes_below`, which clears exactly the report that read
//!                                  # it (the next run computes that one again, nothing else)
//! ```
//!
//! The caches live in `$CACHEMAN_DIR` if it is set, else in `cacheman-quickstart` under the
//! system's temporary directory.

use std::path::PathBuf;
use std::time::Instant;

use cacheman::{CacheManager, cached};

/// Something worth caching: the number of primes below `n`, by trial division.
/// Cache `primes_below`, saved to `<dir>/general_cache/primes_below.cache`.
#[cached]
fn primes_below(n: u64) -> u64 {
    (2..n)
        .filter(|&k| (2..).take_while(|d| d * d <= k).all(|d| k % d != 0))
        .count() as u64
}

/// Derived from `primes_below`: the call is recorded as this entry's input, so invalidating
/// `primes_below(n)` (or changing its body) clears `prime_report(n)` too, in memory and on
/// disk, and no other report. No `depends_on` is needed.
#[cached]
fn prime_report(n: u64) -> String {
    let count = primes_below(n);
    format!(
        "{count:>6} primes below {n:>7}, one in {:.1}",
        n as f64 / count as f64
    )
}

fn main() -> Result<(), cacheman::Error> {
    env_logger::init();
    // The demo's own directory, installed before the first call of a #[cached] function.
    let base = std::env::var_os("CACHEMAN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("cacheman-quickstart"));
    let manager = CacheManager::new(cacheman::DEFAULT_MANAGER, base);
    cacheman::set_cache_manager(manager.clone())?;
    println!("caches in {}", manager.directory().display());

    let mut all_from_disk = true;
    for n in [100_000, 200_000, 400_000] {
        let started = Instant::now();
        // `_peek` looks without computing: was it there before this call?
        let was_cached = prime_report_peek(n).is_some();
        all_from_disk &= was_cached;
        let report = prime_report(n);
        println!(
            "{report}  ({}, {:.1?})",
            if was_cached {
                "from the cache"
            } else {
                "computed"
            },
            started.elapsed()
        );
    }

    if !all_from_disk {
        // Persistent caches save themselves (here: once more at exit).
        println!("Run me again: every answer will come from disk.");
        return Ok(());
    }
    println!(
        "\nEvery answer came from disk. Now say primes_below(200000) was wrong: invalidate \
         that one entry."
    );
    println!(
        "  before: prime_report holds {} entries",
        prime_report_cache().len()
    );
    primes_below_cache().invalidate_key(&200_000)?;
    println!(
        "  after:  prime_report holds {} entries: the report that read primes_below(200000) \
         is gone (from its file too), the others stay",
        prime_report_cache().len()
    );
    println!("{}", prime_report_cache().explain(&100_000));
    println!("The next run computes prime_report(200000) again, and nothing else.");
    Ok(())
}
