//! Nothing lost at a normal exit: an `atexit` hook, a guard and [`flush_all`] save every dirty
//! cache that autosyncs.
//!
//! The hook runs when the program returns from `main` (also after a panic unwound out of it:
//! the runtime catches it and returns) or calls `std::process::exit`. It cannot run on
//! SIGKILL, power loss, `abort` or a panic with `panic = "abort"`: then at most the changes
//! since the last save are lost, and the file is the old one or the new one, never a mix.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::Error;

/// Saves now every cache in the process that autosyncs and has unsaved changes, ignoring
/// save points and retry delays. Tries them all; returns the first error.
///
/// This is what happens at exit; call it before leaving by a way that skips exit handlers.
///
/// ```
/// use cacheman::CacheManager;
///
/// let dir = tempfile::tempdir().unwrap();
/// let manager = CacheManager::new("docs", dir.path());
/// let cache = manager.register_cache::<u8, u8>("c").unwrap();
/// cache.insert(1, 1);
/// cacheman::flush_all().unwrap();
/// assert_eq!(cache.pending_changes(), 0);
/// ```
pub fn flush_all() -> Result<(), Error> {
    let mut first_error = None;
    for cache in super::ticker::live_caches() {
        if cache.changes_since_save() == 0 || !cache.writes_somewhere() {
            continue;
        }
        // The cache's save lock keeps this from overlapping a save by the ticker.
        if let Err(err) = cache.save() {
            log::warn!("cacheman: saving at exit or flush failed: {err}");
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Flushes every dirty autosyncing cache when dropped, as [`flush_all`] does: also when a
/// panic unwinds through the scope that holds it.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let manager = cacheman::CacheManager::new("docs", dir.path());
/// let cache = manager.register_cache::<u8, u8>("c").unwrap();
/// {
///     // Declared after the cache, so dropped (and flushing) while the cache still lives.
///     let _guard = cacheman::flush_on_drop();
///     cache.insert(1, 1);
/// } // saved here, also when a panic unwinds out of the scope
/// assert_eq!(cache.pending_changes(), 0);
/// ```
#[must_use = "the guard flushes when dropped; bind it with `let _guard = ...`"]
#[derive(Debug)]
pub struct FlushGuard {
    _private: (),
}

/// A [`FlushGuard`] for the current scope.
///
/// ```
/// let _guard = cacheman::flush_on_drop();
/// ```
pub fn flush_on_drop() -> FlushGuard {
    FlushGuard { _private: () }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        // A failure is already logged by `flush_all`; a drop has no one to return it to.
        let _ = catch_unwind(flush_all);
    }
}

/// Installs the exit hook, once per process (called with the first autosyncing cache).
pub(crate) fn install() {
    #[cfg(any(unix, windows))]
    {
        // SAFETY: `flush_at_exit` is a plain function that never unwinds across the C boundary.
        if unsafe { libc::atexit(flush_at_exit) } != 0 {
            log::warn!("cacheman: could not install the exit hook; call cacheman::flush_all()");
        }
    }
}

#[cfg(any(unix, windows))]
extern "C" fn flush_at_exit() {
    // Unwinding out of an `extern "C"` function aborts: catch a panicking hook here.
    let _ = catch_unwind(AssertUnwindSafe(flush_all));
}
