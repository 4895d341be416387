//! How a cache is set up: persistence, codec, limits, clock.

use std::sync::Arc;
use std::time::Duration;

use crate::autosync::AutoSync;
use crate::clock::Clock;
use crate::store::Codec;

/// Settings of a cache, for [`CacheManager::register_custom_cache`] and
/// [`CacheManager::cache_builder`].
///
/// The defaults are those of [`CacheManager::register_cache`]: persistent, postcard, unbounded,
/// no expiry, saved even when empty.
///
/// ```
/// use std::time::Duration;
/// use cacheman::{CacheManager, CacheOptions, Codec};
///
/// let dir = tempfile::tempdir().unwrap();
/// let manager = CacheManager::new("docs", dir.path());
/// let scratch = manager
///     .register_custom_cache::<String, u64>("scratch", CacheOptions::new().persistent(false))
///     .unwrap();
/// scratch.insert("a".into(), 1);
/// scratch.save().unwrap(); // a no-op: nothing is written
/// assert!(!dir.path().join("docs/scratch.cache").exists());
///
/// let bounded = CacheOptions::new()
///     .codec(Codec::Json)
///     .capacity(10_000)
///     .ttl(Duration::from_secs(3600));
/// let recent = manager.register_custom_cache::<u64, String>("recent", bounded).unwrap();
/// assert!(recent.is_empty());
/// ```
///
/// [`CacheManager::register_custom_cache`]: crate::CacheManager::register_custom_cache
/// [`CacheManager::cache_builder`]: crate::CacheManager::cache_builder
/// [`CacheManager::register_cache`]: crate::CacheManager::register_cache
#[derive(Debug, Clone)]
#[must_use = "options do nothing until passed to a registration"]
pub struct CacheOptions {
    pub(crate) persistent: bool,
    pub(crate) codec: Codec,
    pub(crate) capacity: Option<usize>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) refresh: bool,
    pub(crate) keep_expired: bool,
    pub(crate) save_on_blank: bool,
    pub(crate) fn_fingerprint: u64,
    /// Smallest journal compacted in the background (`None`: 1 MiB).
    pub(crate) compact_from: Option<u64>,
    /// `None`: the manager's clock.
    pub(crate) clock: Option<Arc<dyn Clock>>,
    /// `None`: the manager's autosync.
    pub(crate) autosync: Option<AutoSync>,
    /// `Some`: entries live on this Redis server instead of a file.
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::Redis>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            persistent: true,
            codec: Codec::Postcard,
            capacity: None,
            ttl: None,
            refresh: false,
            keep_expired: false,
            save_on_blank: true,
            fn_fingerprint: 0,
            compact_from: None,
            clock: None,
            autosync: None,
            #[cfg(feature = "redis")]
            redis: None,
        }
    }
}

impl CacheOptions {
    /// The defaults: persistent, postcard, unbounded, no expiry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the cache is saved to and loaded from a file (default `true`). A non-persistent
    /// cache never touches a file; its `save()` is a no-op unless a custom saver is registered.
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// The payload format of the cache file (default [`Codec::Postcard`]).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Bounds the cache to `capacity` entries: an insert beyond it evicts an entry, never
    /// more entries held than `capacity`.
    ///
    /// Eviction is S3-FIFO: new entries wait in a small queue and leave first unless they are
    /// used again, entries used again stay while they keep being used, so a one-off scan over
    /// many keys does not flush the entries in use; on skewed workloads it keeps more of what
    /// is asked again than exact least-recently-used eviction. A hit only counts a use in the
    /// entry, under its shard's read lock, as fast as a hit on an unbounded cache. Small caches
    /// (under 1,024 entries) keep one set of queues; larger ones split the capacity over their
    /// shards (at least 512 entries each, the shares adding up to exactly `capacity`). A
    /// capacity of 0 is refused at registration.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Entries older than `ttl` (since they were inserted or last overwritten) are not
    /// served, counted or saved, and leave memory: inserts, saves and `len()` drop them, so a
    /// cache over open-ended keys holds only its live entries. Their insertion times are saved
    /// with them, so expiry survives a restart.
    ///
    /// On the system clock, lookups decide expiry on a coarse clock that a background thread
    /// advances every 4 ms, so a hit reads no clock: an entry may be served up to about 4 ms
    /// (more on an overloaded machine) past its time-to-live, never before. On any other clock
    /// ([`ManualClock`](crate::ManualClock) in tests) every lookup reads it, exactly.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Whether a hit restarts its entry's time-to-live (default `false`): sliding expiry, as
    /// moka's time-to-idle and the `cached` crate's `refresh = true`. Entries read at least once
    /// per [`ttl`](Self::ttl) then never expire, while idle ones do. A hit stays a read: it
    /// moves the entry's stamp to the lookup's time (the coarse clock's on the system clock,
    /// see [`ttl`](Self::ttl)) with a plain store, at most once per millisecond. The stamps
    /// are saved with the entries, so a restart keeps them as of the last save (a hit is not a
    /// change: it does not make the cache due for a save by itself). Refused at registration
    /// without a `ttl`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cacheman::{CacheManager, CacheOptions, ManualClock};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let clock = ManualClock::new();
    /// let options = CacheOptions::new()
    ///     .ttl(Duration::from_secs(60))
    ///     .refresh(true)
    ///     .clock(clock.clone());
    /// let sessions = manager.register_custom_cache::<u32, String>("sessions", options).unwrap();
    /// sessions.insert(1, "alice".into());
    /// for _ in 0..10 {
    ///     clock.advance(Duration::from_secs(50));
    ///     assert!(sessions.get(&1).is_some()); // read every 50 s: kept
    /// }
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(sessions.get(&1), None); // idle for 60 s: expired
    /// ```
    pub fn refresh(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }

    /// Whether expired entries stay in memory for one more time-to-live (default `false`), as
    /// the last values that [`Cache::get_or_try_insert_with_fallback`] serves when a
    /// computation fails (the `cached` crate's `result_fallback`). They are not served by
    /// lookups, counted or saved, and leave memory when they are twice the time-to-live old
    /// (or are evicted, removed or overwritten first), so memory stays bounded; `len()` counts
    /// the live entries one by one. Refused at registration without a `ttl`.
    ///
    /// [`Cache::get_or_try_insert_with_fallback`]: crate::Cache::get_or_try_insert_with_fallback
    pub fn keep_expired(mut self, keep_expired: bool) -> Self {
        self.keep_expired = keep_expired;
        self
    }

    /// Whether an empty cache is written to its file (default `true`, as CacheMan's
    /// `save_on_blank_cache`). With `false`, saving an empty cache leaves the file as it is.
    pub fn save_on_blank(mut self, save_on_blank: bool) -> Self {
        self.save_on_blank = save_on_blank;
        self
    }

    /// A fingerprint of the code that computes the values (the `#[cached]` macro sets it from
    /// the function's tokens). A file written under another fingerprint is not loaded.
    pub fn fn_fingerprint(mut self, fingerprint: u64) -> Self {
        self.fn_fingerprint = fingerprint;
        self
    }

    /// The smallest journal of changes that a save has compacted in the background (default
    /// 1 MiB). A journal is compacted once it is larger than both the snapshot and this, as
    /// Redis's `auto-aof-rewrite-min-size` does for its append-only file: a smaller value
    /// keeps the files of a small cache smaller, at the cost of more rewrites. A background
    /// compaction never blocks saves (see [`Cache::compact`](crate::Cache::compact)).
    ///
    /// ```
    /// use cacheman::{CacheManager, CacheOptions};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let options = CacheOptions::new().compact_from(64 * 1024);
    /// let cache = manager.register_custom_cache::<u64, u64>("c", options).unwrap();
    /// cache.insert(1, 1);
    /// cache.save().unwrap();
    /// ```
    pub fn compact_from(mut self, bytes: u64) -> Self {
        self.compact_from = Some(bytes);
        self
    }

    /// The clock used for expiry (default: the manager's clock, see
    /// [`CacheManager::set_clock`](crate::CacheManager::set_clock)).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// When the cache saves itself (default: the manager's, see
    /// [`CacheManager::set_autosync`](crate::CacheManager::set_autosync)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cacheman::{AutoSync, CacheManager, CacheOptions};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let eager = AutoSync::disabled().save_point(Duration::from_secs(1), 1);
    /// let cache = manager
    ///     .register_custom_cache::<u8, u8>("eager", CacheOptions::new().autosync(eager))
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    pub fn autosync(mut self, autosync: AutoSync) -> Self {
        self.autosync = Some(autosync);
        self
    }

    /// Keeps the cache's entries on a Redis server (feature `redis`), shared by every process
    /// on every machine that registers a cache of the same manager, name, types and function
    /// there, instead of in a file (the cache is then persistent: registered with
    /// serde bounds). Values are postcard whatever [`codec`](Self::codec) says (the codec is
    /// a file's); a time-to-live becomes the entries' expiry on the server. Give a URL or
    /// a [`Redis`](crate::Redis) with settings of its own. Nothing is contacted at
    /// registration; see README's "When one machine is not enough".
    ///
    /// ```
    /// use cacheman::{CacheManager, CacheOptions};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs_redis", dir.path());
    /// let options = CacheOptions::new().redis("redis://127.0.0.1:1/"); // no server there
    /// let cache = manager.register_custom_cache::<u32, u32>("squares", options).unwrap();
    /// // The server is down: the value is computed here, returned, and the failure counted.
    /// assert_eq!(cache.get_or_insert_with(4, || 16), 16);
    /// assert!(cache.stats().store_errors >= 1);
    /// ```
    #[cfg(feature = "redis")]
    pub fn redis(mut self, redis: impl Into<crate::Redis>) -> Self {
        self.redis = Some(redis.into());
        self.persistent = true;
        self
    }

    /// What is wrong with options that need a time-to-live and have none.
    pub(crate) fn without_ttl(&self) -> Option<&'static str> {
        if self.ttl.is_some() {
            None
        } else if self.refresh {
            Some(
                "`refresh` restarts a time-to-live on each hit, and there is none; give a `ttl` \
                 too, or leave `refresh` out",
            )
        } else if self.keep_expired {
            Some(
                "`keep_expired` keeps entries past their time-to-live, and there is none; give a \
                 `ttl` too, or leave `keep_expired` out",
            )
        } else {
            None
        }
    }

    /// Whether the cache is persistent.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }
}
