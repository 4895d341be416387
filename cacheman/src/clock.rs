//! Time as caches see it: injected, so that tests of expiry and save points run in
//! milliseconds without sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
///
/// Wall-clock time (not `Instant`) because entry ages are saved to disk and read back by another
/// process. Implementations must be cheap: the time is read on every lookup of a cache with a
/// time-to-live.
///
/// ```
/// use cacheman::{Clock, SystemClock};
///
/// let now = SystemClock.now();
/// assert!(now > std::time::UNIX_EPOCH);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// Whether time moves only when a test says so. The background autosync thread leaves
    /// caches on such a clock alone: the test runs their due saves itself with
    /// [`CacheManager::run_due_saves`](crate::CacheManager::run_due_saves). Default `false`.
    fn is_manual(&self) -> bool {
        false
    }
}

/// The real clock of the machine.
///
/// ```
/// use cacheman::{Clock, SystemClock};
/// assert!(SystemClock.now() <= std::time::SystemTime::now());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to: for tests.
///
/// Clones share one time, so a test keeps a clone and advances the clock the cache sees.
///
/// ```
/// use std::time::Duration;
/// use cacheman::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now().duration_since(start).unwrap(), Duration::from_secs(90));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at a fixed instant in 2020.
    pub fn new() -> Self {
        ManualClock {
            millis: Arc::new(AtomicU64::new(1_577_836_800_000)),
        }
    }

    /// Moves the clock forward by `by` (millisecond resolution).
    pub fn advance(&self, by: Duration) {
        self.millis
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: SystemTime) {
        self.millis.store(unix_millis(to), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }

    fn is_manual(&self) -> bool {
        true
    }
}

/// Milliseconds since the Unix epoch; times before it read as 0.
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
