//! Helpers the integration tests share.

use std::sync::Mutex;

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

/// Every warning cacheman logs, from every test of the binary that called
/// [`capture_warnings`].
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let mut warnings = WARNINGS.lock().unwrap_or_else(|e| e.into_inner());
            warnings.push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// Captures cacheman's warnings (`log`) from now on, for [`warned_about`]. The first logger
/// set in a process stays: call this in every test that reads warnings.
pub fn capture_warnings() {
    // Whichever test thread sets the logger, every caller sets the level before it goes on:
    // one that lost the race to `set_logger` must not log before the winner has set it.
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Warn);
}

/// Whether a captured warning names cache `cache` (as cacheman's messages do: in backticks).
pub fn warned_about(cache: &str) -> bool {
    let needle = format!("`{cache}`");
    let warnings = WARNINGS.lock().unwrap_or_else(|e| e.into_inner());
    warnings.iter().any(|w| w.contains(&needle))
}

/// The warnings logged so far that contain `needle`.
pub fn warnings_containing(needle: &str) -> Vec<String> {
    let warnings = WARNINGS.lock().unwrap_or_else(|e| e.into_inner());
    warnings
        .iter()
        .filter(|w| w.contains(needle))
        .cloned()
        .collect()
}
