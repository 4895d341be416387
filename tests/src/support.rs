//! Helpers the integration tests share.

use cacheman::{AutoSync, CacheManager};

/// Installs manager `name` as a global manager, in a fresh temporary directory, before its
/// first use (as `#[cached]` functions of that manager need). Keep the directory alive for as
/// long as the manager is used.
pub fn install(name: &str) -> (tempfile::TempDir, CacheManager) {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new(name, dir.path());
    // The exit flush would run after `dir` is gone and create it again.
    manager.set_autosync(AutoSync::disabled());
    cacheman::set_cache_manager(manager.clone()).unwrap();
    (dir, manager)
}

/// xorshift64: random enough for kill instants and operation mixes, and replayable from its
/// seed.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number of the sequence (the seed must not be 0).
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
