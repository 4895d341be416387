//! The simplest shape: one argument, default name and manager, persistent.
#![deny(missing_docs, warnings)]

use cacheman::{CacheManager, cached};

/// The `n`th Fibonacci number; the recursion goes through the cache.
#[cached]
pub fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    cacheman::set_cache_manager(CacheManager::new(cacheman::DEFAULT_MANAGER, dir.path())).unwrap();
    assert_eq!(fib(50), 12_586_269_025);
    assert_eq!(fib_cache().len(), 51);
    assert_eq!(fib_uncached(10), 55);
    fib_cache().save().unwrap();
    assert!(dir.path().join("general_cache/fib.cache").exists());
}
