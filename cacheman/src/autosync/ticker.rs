//! The one background thread per process that checks save points, and the caches it watches.
//!
//! It holds only `Weak` references, so it never keeps a cache alive, and Rust does not wait
//! for it at exit, so it never keeps a program running.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, Weak};
use std::time::Duration;

use crate::lifecycle::ErasedCache;

/// Every cache registered with autosync enabled, in this process.
static WATCHED: Mutex<Vec<Weak<dyn ErasedCache>>> = Mutex::new(Vec::new());
static STARTED: Once = Once::new();
static TICK_MILLIS: AtomicU64 = AtomicU64::new(1_000);

fn watched() -> MutexGuard<'static, Vec<Weak<dyn ErasedCache>>> {
    // Only whole pushes and retains happen under this lock; poisoning leaves the list whole.
    WATCHED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Watches `cache` if it autosyncs and a save would write something (a file, or a saver
/// hook), once per cache.
pub(crate) fn watch_if_saving(cache: Arc<dyn ErasedCache>) {
    let state = cache.save_state();
    if state.policy().is_enabled() && cache.writes_somewhere() && state.mark_watched() {
        watch(Arc::downgrade(&cache));
    }
}

/// Starts watching `cache`; the first call starts the thread and installs the exit flush.
fn watch(cache: Weak<dyn ErasedCache>) {
    {
        let mut watched = watched();
        watched.retain(|c| c.strong_count() > 0);
        watched.push(cache);
    }
    STARTED.call_once(|| {
        super::exit::install();
        #[cfg(all(feature = "signal-flush", unix))]
        super::signals::install();
        let spawned = std::thread::Builder::new()
            .name("cacheman-autosync".into())
            .spawn(run);
        if let Err(err) = spawned {
            log::warn!(
                "cacheman: could not start the autosync thread ({err}); caches are saved \
                 only when asked and at exit"
            );
        }
    });
}

/// The live watched caches, strongly held for one pass.
pub(crate) fn live_caches() -> Vec<Arc<dyn ErasedCache>> {
    let mut watched = watched();
    watched.retain(|c| c.strong_count() > 0);
    watched.iter().filter_map(Weak::upgrade).collect()
}

fn run() {
    loop {
        std::thread::sleep(tick_interval());
        for cache in live_caches() {
            if !cache.on_manual_clock() {
                super::save_if_due_catching(&*cache);
            }
        }
    }
}

/// How often the background thread checks save points (default 1 s).
///
/// ```
/// assert_eq!(cacheman::autosync::tick_interval(), std::time::Duration::from_secs(1));
/// ```
pub fn tick_interval() -> Duration {
    Duration::from_millis(TICK_MILLIS.load(Ordering::Relaxed))
}

/// Sets how often the background thread checks save points (at least 10 ms); it takes effect
/// after the thread's current wait. Save points are rarely finer than seconds, so the default
/// of 1 s rarely needs changing.
///
/// ```
/// use std::time::Duration;
/// cacheman::autosync::set_tick_interval(Duration::from_millis(200));
/// assert_eq!(cacheman::autosync::tick_interval(), Duration::from_millis(200));
/// ```
pub fn set_tick_interval(interval: Duration) {
    let millis = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    TICK_MILLIS.store(millis.max(10), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AutoSync, CacheManager, CacheOptions, Contents};

    fn is_watched(cache: &crate::Cache<u8, u8>) -> bool {
        let target: Arc<dyn ErasedCache> = cache.inner.clone();
        live_caches().iter().any(|c| Arc::ptr_eq(c, &target))
    }

    #[test]
    fn only_caches_that_autosync_and_write_somewhere_are_watched() {
        let dir = tempfile::tempdir().unwrap();
        let manager = CacheManager::new("m", dir.path());
        let file = manager.register_cache::<u8, u8>("file").unwrap();
        let off = manager
            .register_custom_cache::<u8, u8>(
                "off",
                CacheOptions::new().autosync(AutoSync::disabled()),
            )
            .unwrap();
        let memory = manager
            .register_memory_cache::<u8, u8>("memory", CacheOptions::new())
            .unwrap();
        assert!(is_watched(&file));
        assert!(!is_watched(&off));
        assert!(!is_watched(&memory));

        // A saver gives the memory cache somewhere to save to.
        manager
            .register_saver("memory", |_: &str, _: &Contents<u8, u8>| Ok(()))
            .unwrap();
        manager
            .register_saver("memory", |_: &str, _: &Contents<u8, u8>| Ok(()))
            .unwrap();
        assert!(is_watched(&memory));
        let target: Arc<dyn ErasedCache> = memory.inner.clone();
        let entries = live_caches()
            .iter()
            .filter(|c| Arc::ptr_eq(c, &target))
            .count();
        assert_eq!(entries, 1, "watched twice");
    }
}
