//! A manager's side of autosync: the default policy of its caches, and running their due
//! saves by hand (what the background thread does, for tests on a manual clock).

use super::{AutoSync, save_if_due};
use crate::CacheManager;

/// What [`CacheManager::run_due_saves`] did: the caches it saved and those whose save failed
/// (logged, and retried after the policy's retry delay), by name.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let manager = cacheman::CacheManager::new("docs", dir.path());
/// let nothing = manager.run_due_saves();
/// assert!(nothing.saved.is_empty() && nothing.failed.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueSaves {
    /// Caches saved, sorted by name.
    pub saved: Vec<String>,
    /// Caches whose save failed, sorted by name.
    pub failed: Vec<String>,
}

impl CacheManager {
    /// Sets the [`AutoSync`] of the caches registered from now on whose options name none
    /// (default: [`AutoSync::new`], Redis's save points).
    ///
    /// ```
    /// use cacheman::{AutoSync, CacheManager};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// manager.set_autosync(AutoSync::disabled()); // this program saves by itself
    /// assert!(!manager.autosync().is_enabled());
    /// ```
    pub fn set_autosync(&self, autosync: AutoSync) {
        *self
            .shared
            .autosync
            .write()
            .unwrap_or_else(|e| e.into_inner()) = autosync;
    }

    /// The [`AutoSync`] given to caches whose options name none.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// assert_eq!(manager.autosync(), cacheman::AutoSync::new());
    /// ```
    pub fn autosync(&self) -> AutoSync {
        self.shared
            .autosync
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Saves now every cache of this manager whose save points are met, each by its own
    /// clock: what the background thread does about once a second for every cache in the
    /// process. Caches on a [`ManualClock`](crate::ManualClock) are left to this call (the
    /// background thread skips them), so tests decide when time has passed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cacheman::{CacheManager, ManualClock};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let clock = ManualClock::new();
    /// manager.set_clock(clock.clone());
    /// let cache = manager.register_cache::<u8, u8>("c").unwrap();
    /// cache.insert(1, 1);
    /// clock.advance(Duration::from_secs(899));
    /// assert!(manager.run_due_saves().saved.is_empty());
    /// clock.advance(Duration::from_secs(1)); // 900 s after 1 change: Redis's `save 900 1`
    /// assert_eq!(manager.run_due_saves().saved, vec!["c"]);
    /// ```
    pub fn run_due_saves(&self) -> DueSaves {
        let mut caches = self.registered_caches();
        caches.sort_by(|a, b| a.name().cmp(b.name()));
        let mut report = DueSaves::default();
        for cache in caches {
            match save_if_due(&*cache) {
                Some(Ok(())) => report.saved.push(cache.name().to_owned()),
                Some(Err(_)) => report.failed.push(cache.name().to_owned()),
                None => {}
            }
        }
        report
    }
}
