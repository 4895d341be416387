//! Named, persistent, dependency-aware caches: memoize an expensive computation so that its
//! results survive the process, and are cleared when what they were derived from changes.
//!
//! cacheman brings the ideas of the Python library
//! [CacheMan](https://pypi.org/project/CacheMan/) to Rust: a manager of named caches with
//! savers, loaders, deleters, validators and builders that default to files on disk, and
//! invalidation that follows dependencies: declared between caches, and recorded between
//! entries as the code runs.
//!
//! The face of it is [`#[cached]`](cached): a function whose results are kept in a named cache
//! that is saved to a file. What each entry read while it was computed (entries of other
//! caches, files with [`track_file`], values with [`track_value`]) is recorded, so that when
//! one of those changes exactly the entries derived from it are recomputed, also in a later
//! process.
//!
//! ```
//! use cacheman::cached;
//! # let dir = tempfile::tempdir().unwrap();
//! # let manager = cacheman::CacheManager::new("general_cache", dir.path());
//! # manager.set_autosync(cacheman::AutoSync::disabled()); // `dir` is gone at exit
//! # cacheman::set_cache_manager(manager).unwrap();
//!
//! #[cached] // cache "count_primes", saved to <cache dir>/general_cache/count_primes.cache
//! fn count_primes(n: u64) -> u64 {
//!     (2..n).filter(|&k| (2..).take_while(|d| d * d <= k).all(|d| k % d != 0)).count() as u64
//! }
//!
//! #[cached] // the call of count_primes(n) is recorded: no `depends_on` needed
//! fn prime_summary(n: u64) -> String {
//!     format!("{} primes below {n}", count_primes(n))
//! }
//!
//! assert_eq!(prime_summary(1_000), "168 primes below 1000"); // computed; a later run reads it
//! assert_eq!(prime_summary(2_000), "303 primes below 2000");
//! assert_eq!(count_primes_cache().get(&1_000), Some(168));
//! count_primes_cache().invalidate_key(&1_000).unwrap(); // what read it goes, nothing else
//! assert_eq!(prime_summary_cache().len(), 1);
//! ```
//!
//! Underneath is the manager API, CacheMan's: caches registered by name, with hooks and
//! dependency edges.
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
//! assert_eq!(root.get("raw"), None); // a `String` key is read with a `&str`
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
mod background;
mod builder;
mod cache;
mod cache_async;
mod cache_deps;
mod cache_inner;
mod cache_miss;
mod cache_recorded;
mod cache_shared;
mod cache_shared_async;
mod cached_fn;
#[cfg(feature = "cli")]
pub mod cli;
mod clock;
mod declarations;
mod deps;
mod error;
mod fallback;
mod flight;
mod global;

mod hooks;
pub mod inspect;
mod lifecycle;
mod manager;
mod manager_entries;
mod manager_operations;
#[cfg(feature = "redis")]
mod manager_redis;
mod names;
mod offload;
mod options;
mod query;
mod shards;
mod stable_hash;
mod stats;
mod store;

pub use autosync::{AutoSync, flush_all, flush_on_drop};
pub use builder::CacheBuilder;
pub use cache::Cache;
pub use cached_fn::Return;
/// Caches a function's results in a named, persistent, dependency-aware cache.
///
/// ```
/// use cacheman::cached;
/// # let dir = tempfile::tempdir().unwrap();
/// # let manager = cacheman::CacheManager::new("general_cache", dir.path());
/// # manager.set_autosync(cacheman::AutoSync::disabled()); // `dir` is gone at exit
/// # cacheman::set_cache_manager(manager).unwrap();
///
/// #[cached] // cache "fib" of the default manager, saved to <cache dir>/general_cache/fib.cache
/// fn fib(n: u64) -> u64 {
///     if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
/// }
///
/// assert_eq!(fib(90), 2_880_067_194_370_816_120); // each n computed once
/// assert_eq!(fib_cache().len(), 91);
/// fib_cache().save().unwrap();
/// ```
///
/// The body runs only on a miss; concurrent callers of one key wait for a single run, and
/// recursion goes through the cache. The arguments form the key as owned values (`&str` →
/// `String`, `&[T]` → `Vec<T>`, `&T` → `T::Owned`): one argument is the key itself
/// (`fib_cache().get(&10)`), several make a tuple. A hit borrows the arguments and builds no
/// key. Values are returned by clone, so return an `Arc<T>` for big values.
///
/// # Arguments
///
/// | argument | default | example |
/// |---|---|---|
/// | `name = "..."` | the function's name | `#[cached(name = "root")]` |
/// | `manager = "..."` | [`DEFAULT_MANAGER`] | `#[cached(manager = "reports")]` |
/// | `depends_on = ...` | none | `depends_on = "root"`, `depends_on = [raw, "edge"]` |
/// | `persistent = bool` | `true` | `#[cached(persistent = false)]` (values need no serde) |
/// | `capacity = N` | unbounded | `#[cached(capacity = 10_000)]` (S3-FIFO eviction) |
/// | `ttl_secs = N` | no expiry | `#[cached(ttl_secs = 3600)]` |
/// | `refresh = bool` | `false` | `ttl_secs = 60, refresh = true`: a hit restarts the TTL |
/// | `result` | off | cache only the `Ok` values of a `Result<T, E>` |
/// | `result_fallback` | off | with `result, ttl_secs`: on `Err`, serve the expired value |
/// | `option` | off | cache only the `Some` values of an `Option<T>` |
/// | `key = <expr>` | every argument | `key = id`, `key = (self.id, n)` |
/// | `key_type = <type>` | from the signature | `key = format!("{a}/{b}"), key_type = String` |
/// | `version = N` | 0 | `#[cached(version = 2)]`: start afresh by hand |
/// | `with_cached_flag` | off | return [`Return<T>`], whose `was_cached` says if the body ran |
///
/// A `depends_on` string names a cache, checked when the manager is first used; a path names
/// another `#[cached]` function and is checked by the compiler. Invalidating a cache clears
/// every cache declared to depend on it, even one whose function was never called.
///
/// # What it generates
///
/// Beside the function itself (same signature, visibility, attributes and docs):
/// `<fn>_cache()`, a [`Cache`] handle to clear, invalidate, save or inspect the cache;
/// `<fn>_refresh(...)`, which runs the body whatever the cache holds, stores the value and
/// returns it (for a value known to be stale); `<fn>_peek(...) -> Option<V>`, the cached value
/// without running the body; `<fn>_uncached(...)`, the original body without the cache; and a
/// hidden `__cacheman_decl_<fn>` constant that `depends_on = <fn>` refers to.
///
/// ```
/// use cacheman::cached;
///
/// struct Pricing {
///     rate: u64,
/// }
///
/// impl Pricing {
///     // `self` is not part of the key: every `Pricing` shares this cache.
///     #[cached(persistent = false, result)]
///     fn quote(&self, sku: &str) -> Result<u64, String> {
///         if sku.is_empty() { Err("no sku".into()) } else { Ok(sku.len() as u64 * self.rate) }
///     }
/// }
///
/// let pricing = Pricing { rate: 3 };
/// assert_eq!(pricing.quote("abc"), Ok(9));
/// assert!(pricing.quote("").is_err()); // errors are not cached
/// assert_eq!(Pricing::quote_cache().keys(), vec!["abc".to_owned()]);
/// assert_eq!(Pricing::quote_uncached(&pricing, "ab"), Ok(6));
/// assert_eq!(pricing.quote_peek("abc"), Some(9));
/// assert_eq!(pricing.quote_peek("ab"), None); // peeking computes nothing
/// ```
///
/// `async fn` works the same way, with no async runtime needed by cacheman.
///
/// # Errors
///
/// Mistakes in the attribute, generic functions and `impl Trait` arguments are compile errors
/// that show the fix. Problems among the declarations (an unknown `depends_on` name, two
/// functions declaring one name, a cycle) are found when the manager is first used: the
/// function panics with the [`Error`]'s message at its first call, since its signature has no
/// room for it, and [`CacheManager::check_declarations`] returns them as errors, for a startup
/// check or a test. Registering a declared cache by hand with other key or value types is
/// refused with [`Error::TypeMismatch`], so the function never meets a cache of the wrong
/// types. A persistent function whose key or value type lacks serde's `Serialize` /
/// `Deserialize` is a compile error at the type that says to derive them or to set
/// `persistent = false`. The function's tokens (signature and body) and `version` are hashed
/// into the cache file's function fingerprint, so entries saved by an older body are not
/// served.
pub use cacheman_macros::cached;
pub use clock::{Clock, ManualClock, SystemClock};
pub use deps::{Explanation, InputReport, InputSource, Staleness, track_file, track_value};
pub use error::{Error, HookError};
pub use global::{
    DEFAULT_MANAGER, default_base_dir, get_cache_manager, get_cache_manager_named,
    set_cache_manager,
};
pub use hooks::Contents;
pub use manager::CacheManager;
pub use options::CacheOptions;
pub use stats::CacheStats;
pub use store::Codec;
#[cfg(feature = "redis")]
pub use store::redis::Redis;

/// The decoders of cache files and graph files, for the fuzz targets in `fuzz/` and the
/// hostile-file tests. Not part of the API: it may change in any release.
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::deps::fuzz::{
        decode_graph, decode_graph_journal, graph_file_for, graph_frame_body_for, graph_frame_for,
        graph_journal_for, graph_payload_for,
    };
    pub use crate::store::fuzz::{
        KINDS, decode_as, decode_journal, file_for, journal_file_for, journal_frames_for,
        payload_for,
    };
}

/// What `#[cached]` expands to refers to these paths; they are not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::cache_shared_async::{Fetching, Landing, Looked};
    pub use crate::cached_fn::{
        compute, compute_async, compute_or_fall_back, compute_or_fall_back_async, land, lookup,
        lookup_or_fetch,
    };
    pub use crate::declarations::{
        Declaration, OpenView, Persistable, ViaNothing, ViaSerde, ViewOf, assert_same_manager,
        open_memory, open_persistent, redis_store_available, typed_future,
    };
    pub use crate::names::assert_valid_name;
    pub use inventory;
    pub use std::sync::OnceLock;
}

// The README's examples are compiled and run as doctests, so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../docs/AUTOSYNC.md")]
struct AutosyncDoctests;
