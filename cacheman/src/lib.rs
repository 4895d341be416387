//! Named, persistent, dependency-aware caches: memoize an expensive computation so that its
//! results survive the process, and are cleared when what they were derived from changes.
//!
//! cacheman brings the ideas of the Python library
//! [CacheMan](https://pypi.org/project/CacheMan/) to Rust: a manager of named caches with
//! savers, loaders, deleters, validators and builders that default to files on disk, and
//! invalidation that follows declared dependencies.
//!
//! ```
//! use cacheman::CacheManager;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let manager = CacheManager::new("quickstart", dir.path());
//!
//! // Invalidating `root` clears `edge` too.
//! manager.register_dependent_cache("root", "edge").unwrap();
//! let root = manager.retrieve_cache::<String, u64>("root").unwrap();
//! let edge = manager.retrieve_cache::<String, u64>("edge").unwrap();
//!
//! root.insert("raw".into(), 1);
//! edge.insert("processed".into(), 5);
//! manager.save_all_cache_contents().unwrap();
//!
//! manager.invalidate_cache("root").unwrap();
//! assert!(edge.is_empty());
//! assert_eq!(format!("{edge:?}"), "{}");
//! ```
//!
//! # Files
//!
//! Each persistent cache is one file, `<base dir>/<manager>/<cache>.cache`: a checked header
//! (magic, format version, codec, type and function fingerprints, invalidation epoch, entry count,
//! payload length and CRC-32) and a payload in the cache's [`Codec`]. Saves write a temporary
//! file beside it, fsync it, rename it over the old one and fsync the directory: a crash leaves
//! the old file or the new one, never a mix. A file that is damaged or was written for other
//! types is never trusted: loading it is an error (or, at registration, a `log` warning and an
//! empty cache), and it is left alone until the next save replaces it.
//!
//! # Autosync
//!
//! Persistent caches save themselves when Redis-style save points are met (by default 1 change
//! within 900 s, 10 within 300 s, 10,000 within 60 s), from one background thread, and once
//! more at exit; see the [`autosync`] module.

pub mod autosync;
mod builder;
mod cache;
mod clock;
mod declarations;
mod error;
mod flight;
mod global;
mod graph;
mod hooks;
mod lifecycle;
mod manager;
mod options;
mod shards;
mod stats;
mod store;

pub use autosync::{AutoSync, flush_all, flush_on_drop};
pub use builder::CacheBuilder;
pub use cache::Cache;
pub use cacheman_macros::cached;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, HookError};
pub use global::{
    DEFAULT_MANAGER, default_base_dir, get_cache_manager, get_cache_manager_named,
    set_cache_manager,
};
pub use hooks::Contents;
pub use manager::{CacheManager, Dependents};
pub use options::CacheOptions;
pub use stats::CacheStats;
pub use store::Codec;

/// The file decoder, for the fuzz target in `fuzz/` and the hostile-file tests. Not part of the
/// API: it may change in any release.
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::store::fuzz::{KINDS, decode_as, file_for, payload_for};
}

/// What `#[cached]` expands to refers to these paths; they are not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::declarations::{Declaration, open_memory, open_persistent};
    pub use inventory;
    pub use std::sync::OnceLock;

    /// Fails compilation when a `depends_on` path names a function of another manager.
    pub const fn assert_same_manager(dependency: &Declaration, manager: &str) {
        let (a, b) = (dependency.manager.as_bytes(), manager.as_bytes());
        let mut same = a.len() == b.len();
        let mut i = 0;
        while same && i < a.len() {
            same = a[i] == b[i];
            i += 1;
        }
        if !same {
            panic!(
                "`depends_on` names a #[cached] function of another manager; dependency edges \
                 join caches of one manager: give both functions the same `manager = \"...\"`"
            );
        }
    }

    /// Fixes the output type of an async block, so that `?` inside it knows its error type.
    pub fn typed_future<T, F: Future<Output = T>>(future: F) -> F {
        future
    }
}

// The README's examples are compiled and run as doctests, so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../docs/AUTOSYNC.md")]
struct AutosyncDoctests;
