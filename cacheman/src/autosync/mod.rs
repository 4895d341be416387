//! Autosync: caches that save themselves, and nothing lost at exit.
//!
//! [`AutoSync`] holds a cache's save points. The rule is Redis's RDB snapshot rule: a cache is
//! saved when, for some save point `(after, changes)`, at least `changes` changes happened
//! since its last save and at least `after` has passed since that save. One background thread
//! per process checks every autosyncing cache about once a second ([`set_tick_interval`]);
//! at exit, an `atexit` hook saves what is still dirty ([`flush_all`], [`flush_on_drop`]).
//!
//! ```
//! use std::time::Duration;
//! use cacheman::{AutoSync, CacheManager};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let manager = CacheManager::new("docs", dir.path());
//! // Every cache of this manager: saved 5 s after any change.
//! manager.set_autosync(AutoSync::disabled().save_point(Duration::from_secs(5), 1));
//! let cache = manager.register_cache::<String, u64>("counts").unwrap();
//! cache.insert("a".into(), 1);
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::lifecycle::ErasedCache;

mod exit;
mod manager;
#[cfg(all(feature = "signal-flush", unix))]
mod signals;
mod ticker;

pub use exit::{FlushGuard, flush_all, flush_on_drop};
pub use manager::DueSaves;
pub(crate) use ticker::watch_if_saving;
pub use ticker::{set_tick_interval, tick_interval};

/// How long a cache waits after a failed automatic save before the next try (Redis waits
/// 5 s too).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// One save point: save when at least `changes` changes happened and at least `after` passed
/// since the last save.
///
/// ```
/// use std::time::Duration;
/// use cacheman::autosync::SavePoint;
///
/// let point = SavePoint::new(Duration::from_secs(60), 10_000);
/// assert_eq!(point.after(), Duration::from_secs(60));
/// assert_eq!(point.changes(), 10_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SavePoint {
    after: Duration,
    changes: u64,
}

impl SavePoint {
    /// A save point of `changes` changes, at least `after` after the last save. A point of
    /// 0 changes is taken as 1: a cache with nothing to save is never written by autosync.
    pub fn new(after: Duration, changes: u64) -> Self {
        SavePoint {
            after,
            changes: changes.max(1),
        }
    }

    /// The time that must have passed since the last save.
    pub fn after(&self) -> Duration {
        self.after
    }

    /// The changes that must have happened since the last save.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    fn is_met(&self, changes: u64, since_save: Duration) -> bool {
        changes >= self.changes && since_save >= self.after
    }
}

/// When a cache saves itself: a list of save points, checked about once a second by one
/// background thread per process.
///
/// The default points are those of Redis's old sample configuration (`save 900 1`,
/// `save 300 10`, `save 60 10000`): a cache is saved 15 minutes after a single change,
/// 5 minutes after 10 changes, or a minute after 10,000. Set it for all caches of a manager
/// with [`CacheManager::set_autosync`](crate::CacheManager::set_autosync), or for one cache
/// with [`CacheOptions::autosync`](crate::CacheOptions::autosync).
///
/// [`AutoSync::disabled`] caches are saved only when asked (`save()`, the manager's save
/// calls, [`flush_all`]); they are not saved at exit either.
///
/// ```
/// use std::time::Duration;
/// use cacheman::{AutoSync, CacheManager, CacheOptions, ManualClock};
///
/// let dir = tempfile::tempdir().unwrap();
/// let manager = CacheManager::new("docs", dir.path());
/// let clock = ManualClock::new();
/// manager.set_clock(clock.clone());
/// // Save after 100 changes, once 10 seconds have passed since the last save.
/// let every_100 = AutoSync::disabled().save_point(Duration::from_secs(10), 100);
/// let cache = manager
///     .register_custom_cache::<u32, u32>("hot", CacheOptions::new().autosync(every_100))
///     .unwrap();
/// cache.extend((0..100).map(|i| (i, i)));
/// clock.advance(Duration::from_secs(10));
/// // The background thread would do this within a second; tests run it by hand.
/// assert_eq!(manager.run_due_saves().saved, vec!["hot"]);
/// assert_eq!(cache.pending_changes(), 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[must_use = "an AutoSync does nothing until set on a manager or in CacheOptions"]
pub struct AutoSync {
    points: Vec<SavePoint>,
    retry_after: Duration,
}

impl Default for AutoSync {
    /// Redis's old sample configuration: 900 s/1 change, 300 s/10, 60 s/10,000.
    fn default() -> Self {
        AutoSync::disabled()
            .save_point(Duration::from_secs(900), 1)
            .save_point(Duration::from_secs(300), 10)
            .save_point(Duration::from_secs(60), 10_000)
    }
}

impl AutoSync {
    /// The default save points (see [`AutoSync`]).
    ///
    /// ```
    /// let points = cacheman::AutoSync::new().save_points().len();
    /// assert_eq!(points, 3);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// No save points: the cache is saved only when asked.
    ///
    /// A policy is enabled exactly when it has a save point, so this is also where a policy of
    /// your own points starts: `AutoSync::disabled().save_point(..)` is enabled, with that
    /// one point and none of the defaults.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cacheman::AutoSync;
    ///
    /// assert!(!AutoSync::disabled().is_enabled());
    /// let own = AutoSync::disabled().save_point(Duration::from_secs(10), 100);
    /// assert!(own.is_enabled());
    /// assert_eq!(own.save_points().len(), 1);
    /// ```
    pub fn disabled() -> Self {
        AutoSync {
            points: Vec::new(),
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }

    /// Adds a save point: save when at least `changes` changes happened and at least `after`
    /// has passed since the last save. Added to [`disabled`](Self::disabled), it enables
    /// the policy; added to [`new`](Self::new), it joins the default points.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sync = cacheman::AutoSync::disabled().save_point(Duration::from_secs(30), 1);
    /// assert!(sync.is_enabled());
    /// ```
    pub fn save_point(mut self, after: Duration, changes: u64) -> Self {
        self.points.push(SavePoint::new(after, changes));
        self
    }

    /// How long to wait after a failed automatic save before trying again (default 5 s).
    /// Meanwhile the cache keeps serving and keeps counting its changes.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sync = cacheman::AutoSync::new().retry_after(Duration::from_secs(30));
    /// assert_eq!(sync.retry_delay(), Duration::from_secs(30));
    /// ```
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = delay;
        self
    }

    /// The save points, in the order they were added.
    ///
    /// ```
    /// use std::time::Duration;
    /// let first = cacheman::AutoSync::new().save_points()[0];
    /// assert_eq!((first.after(), first.changes()), (Duration::from_secs(900), 1));
    /// ```
    pub fn save_points(&self) -> &[SavePoint] {
        &self.points
    }

    /// The delay before a failed automatic save is retried.
    ///
    /// ```
    /// assert_eq!(cacheman::AutoSync::new().retry_delay().as_secs(), 5);
    /// ```
    pub fn retry_delay(&self) -> Duration {
        self.retry_after
    }

    /// Whether any save point is set.
    ///
    /// ```
    /// assert!(cacheman::AutoSync::new().is_enabled());
    /// ```
    pub fn is_enabled(&self) -> bool {
        !self.points.is_empty()
    }

    /// The rule itself: whether `changes` changes, `since_save` after the last save, meet
    /// some save point.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sync = cacheman::AutoSync::new();
    /// assert!(sync.is_due(1, Duration::from_secs(900)));
    /// assert!(!sync.is_due(9, Duration::from_secs(899)));
    /// assert!(sync.is_due(10, Duration::from_secs(300)));
    /// assert!(!sync.is_due(0, Duration::from_secs(86_400)));
    /// ```
    pub fn is_due(&self, changes: u64, since_save: Duration) -> bool {
        self.points.iter().any(|p| p.is_met(changes, since_save))
    }
}

/// What a cache remembers for autosync: its policy, when it was last saved, and when an
/// automatic save last failed. Times are Unix milliseconds of the cache's own clock.
#[derive(Debug)]
pub(crate) struct SaveState {
    policy: AutoSync,
    last_save_ms: AtomicU64,
    /// 0 while the last automatic save (if any) succeeded.
    failed_at_ms: AtomicU64,
    /// On the background thread's list already.
    watched: AtomicBool,
}

impl SaveState {
    /// A cache that was just loaded: Redis likewise counts from server start.
    pub(crate) fn new(policy: AutoSync, now_ms: u64) -> Self {
        SaveState {
            policy,
            last_save_ms: AtomicU64::new(now_ms),
            failed_at_ms: AtomicU64::new(0),
            watched: AtomicBool::new(false),
        }
    }

    /// `true` the first time only.
    pub(crate) fn mark_watched(&self) -> bool {
        !self.watched.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn policy(&self) -> &AutoSync {
        &self.policy
    }

    /// Called by every successful save, asked for or automatic.
    pub(crate) fn saved(&self, now_ms: u64) {
        self.last_save_ms.store(now_ms, Ordering::Release);
        self.failed_at_ms.store(0, Ordering::Release);
    }

    pub(crate) fn failed(&self, now_ms: u64) {
        // 0 means "no failure": a clock at the epoch still records one.
        self.failed_at_ms.store(now_ms.max(1), Ordering::Release);
    }

    /// Whether an automatic save is due now, with `changes` pending.
    pub(crate) fn is_due(&self, changes: u64, now_ms: u64) -> bool {
        let failed_at = self.failed_at_ms.load(Ordering::Acquire);
        if failed_at != 0 && elapsed(failed_at, now_ms) < self.policy.retry_after {
            return false;
        }
        let since_save = elapsed(self.last_save_ms.load(Ordering::Acquire), now_ms);
        self.policy.is_due(changes, since_save)
    }
}

fn elapsed(from_ms: u64, to_ms: u64) -> Duration {
    // A clock set back reads as no time passed, not as a huge one.
    Duration::from_millis(to_ms.saturating_sub(from_ms))
}

/// Saves `cache` if its save points say so. `None`: not due. A failure is logged and delays
/// the next try by the policy's retry delay; the changes stay pending.
pub(crate) fn save_if_due(cache: &dyn ErasedCache) -> Option<Result<(), crate::Error>> {
    if !cache.writes_somewhere() {
        return None;
    }
    let now = cache.now_ms();
    if !cache.save_state().is_due(cache.changes_since_save(), now) {
        return None;
    }
    let result = cache.save();
    if let Err(err) = &result {
        cache.save_state().failed(now);
        log::warn!(
            "cacheman: automatic save failed, retrying in {:?}: {err}",
            cache.save_state().policy().retry_after
        );
    }
    Some(result)
}

/// [`save_if_due`] for the background thread, which must outlive a panicking saver hook.
pub(crate) fn save_if_due_catching(cache: &dyn ErasedCache) {
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| save_if_due(cache)));
    if attempt.is_err() {
        cache.save_state().failed(cache.now_ms());
        log::warn!(
            "cacheman: a hook panicked while cache `{}` was saved automatically; retrying later",
            cache.name()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    #[test]
    fn each_default_point_fires_and_the_lower_ones_do_not() {
        let sync = AutoSync::new();
        let secs = Duration::from_secs;
        // 900 s / 1
        assert!(!sync.is_due(1, secs(899)));
        assert!(sync.is_due(1, secs(900)));
        // 300 s / 10
        assert!(!sync.is_due(9, secs(300)));
        assert!(!sync.is_due(10, secs(299)));
        assert!(sync.is_due(10, secs(300)));
        // 60 s / 10,000
        assert!(!sync.is_due(9_999, secs(60)));
        assert!(!sync.is_due(10_000, secs(59)));
        assert!(sync.is_due(10_000, secs(60)));
    }

    #[test]
    fn a_disabled_policy_is_never_due() {
        assert!(!AutoSync::disabled().is_due(u64::MAX, Duration::MAX));
    }

    #[test]
    fn a_failed_save_waits_for_the_retry_delay() {
        let state = SaveState::new(AutoSync::new(), 0);
        assert!(state.is_due(1, 900 * S));
        state.failed(900 * S);
        assert!(!state.is_due(1, 904 * S));
        assert!(state.is_due(1, 905 * S));
        state.saved(905 * S);
        assert!(!state.is_due(1, 906 * S));
    }

    #[test]
    fn a_clock_set_back_is_not_a_long_wait() {
        let state = SaveState::new(AutoSync::new(), 10_000 * S);
        assert!(!state.is_due(1, 0));
    }
}
