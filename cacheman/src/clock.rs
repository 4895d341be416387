//! Time as caches see it: injected, so that tests of expiry and save points run in
//! milliseconds without sleeping; and the coarse clock that lookups of caches with a
//! time-to-live read instead of the system's, so that a hit costs no clock read.
//!
//! The coarse clock is one process-wide millisecond counter that a `cacheman-clock` thread
//! sets to the system time every [`COARSE_TICK`]; the thread runs only while a cache that needs
//! it is alive. Expiry decided on it is late by at most about one tick (more when the machine
//! is too busy to run the thread on time), never early: entries are stamped with the exact
//! time when they are inserted, and the counter never runs ahead of the system time.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

    /// Whether [`now`](Clock::now) is the machine's real time (`SystemTime::now()`). Lookups
    /// of a cache with a time-to-live on such a clock read cacheman's coarse clock instead (a
    /// millisecond counter a background thread advances every 4 ms), so a hit costs no clock
    /// read; expiry is then decided up to a few milliseconds late, never early. Default
    /// `false`: every lookup asks [`now`](Clock::now), which is exact.
    ///
    /// ```
    /// use cacheman::{Clock, ManualClock, SystemClock};
    /// assert!(SystemClock.is_system_time());
    /// assert!(!ManualClock::new().is_system_time());
    /// ```
    fn is_system_time(&self) -> bool {
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

    fn is_system_time(&self) -> bool {
        true
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

/// How often the coarse clock's thread sets the counter: the precision of expiry on the system
/// clock (a kernel tick of 250 Hz, like `CLOCK_REALTIME_COARSE`'s on many systems).
pub(crate) const COARSE_TICK: Duration = Duration::from_millis(4);

/// The coarse clock: Unix milliseconds, set by the `cacheman-clock` thread.
static COARSE_MS: AtomicU64 = AtomicU64::new(0);

/// How many [`CoarseTime`]s are alive, and whether the thread runs.
static COARSE_USERS: Mutex<(usize, bool)> = Mutex::new((0, false));

fn coarse_users() -> std::sync::MutexGuard<'static, (usize, bool)> {
    // Two integers cannot be left half-written by a panic.
    COARSE_USERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A reader of the coarse clock; the clock's thread runs while one is alive.
#[derive(Debug)]
struct CoarseTime;

impl CoarseTime {
    /// A reader, starting the thread if none runs; `None` if the thread cannot be started.
    fn acquire() -> Option<CoarseTime> {
        let mut users = coarse_users();
        if !users.1 {
            COARSE_MS.store(unix_millis(SystemTime::now()), Ordering::Relaxed);
            let started = std::thread::Builder::new()
                .name("cacheman-clock".into())
                .spawn(run_coarse_clock);
            if let Err(err) = started {
                log::warn!(
                    "cacheman: could not start the coarse clock's thread ({err}); lookups of \
                     caches with a time-to-live read the system clock instead"
                );
                return None;
            }
            users.1 = true;
        }
        users.0 += 1;
        Some(CoarseTime)
    }

    #[inline]
    fn now_ms(&self) -> u64 {
        COARSE_MS.load(Ordering::Relaxed)
    }
}

impl Drop for CoarseTime {
    fn drop(&mut self) {
        coarse_users().0 -= 1;
    }
}

fn run_coarse_clock() {
    loop {
        std::thread::sleep(COARSE_TICK);
        let mut users = coarse_users();
        if users.0 == 0 {
            // Under the lock: a reader acquired after this sees the thread stopped and starts
            // another.
            users.1 = false;
            return;
        }
        drop(users);
        COARSE_MS.store(unix_millis(SystemTime::now()), Ordering::Relaxed);
    }
}

/// The time as one cache reads it: the exact time of its clock for changes and saves, and for
/// lookups the coarse clock when its clock is the system's (see [`Clock::is_system_time`]).
pub(crate) struct CacheTime {
    clock: Arc<dyn Clock>,
    /// Whether lookups need the time at all: only a time-to-live is decided on it.
    on_lookups: bool,
    coarse: Option<CoarseTime>,
}

impl CacheTime {
    /// `expiring`: whether the cache has a time-to-live (the only reason a lookup reads time).
    pub(crate) fn new(clock: Arc<dyn Clock>, expiring: bool) -> Self {
        let coarse = (expiring && clock.is_system_time())
            .then(CoarseTime::acquire)
            .flatten();
        CacheTime {
            clock,
            on_lookups: expiring,
            coarse,
        }
    }

    /// The exact time, in Unix milliseconds.
    pub(crate) fn now_ms(&self) -> u64 {
        unix_millis(self.clock.now())
    }

    /// The time a lookup decides expiry on: the coarse clock's, or the clock's own for a clock
    /// that is not the system's (so a [`ManualClock`] decides exactly), or 0 for a cache
    /// without a time-to-live.
    #[inline]
    pub(crate) fn lookup_ms(&self) -> u64 {
        match &self.coarse {
            Some(coarse) => coarse.now_ms(),
            None => self.uncoarse_lookup_ms(),
        }
    }

    /// [`CacheTime::lookup_ms`] without the coarse clock: out of line, so that the hits of
    /// caches on the system's clock fall through to theirs (a call costs little beside the
    /// clock's own, through its trait object).
    #[cold]
    #[inline(never)]
    fn uncoarse_lookup_ms(&self) -> u64 {
        if self.on_lookups { self.now_ms() } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_follows_the_system_clock_and_never_runs_ahead() {
        let time = CacheTime::new(Arc::new(SystemClock), true);
        assert!(time.coarse.is_some());
        let before = unix_millis(SystemTime::now());
        let coarse = time.lookup_ms();
        assert!(coarse <= unix_millis(SystemTime::now()));
        // Set when the thread started, or by it since: not older than a few ticks.
        assert!(
            before.saturating_sub(coarse) < 1_000,
            "{before} vs {coarse}"
        );
    }

    #[test]
    fn a_manual_clock_is_read_exactly_on_lookups() {
        let clock = ManualClock::new();
        let time = CacheTime::new(Arc::new(clock.clone()), true);
        assert!(time.coarse.is_none());
        clock.advance(Duration::from_millis(1));
        assert_eq!(time.lookup_ms(), unix_millis(clock.now()));
        let unexpiring = CacheTime::new(Arc::new(SystemClock), false);
        assert_eq!(unexpiring.lookup_ms(), 0);
        assert!(unexpiring.coarse.is_none());
    }
}
