//! The typed cache handle: a concurrent map with statistics and single-flight misses.

use crate::shards::RowMeta;
use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::autosync::SaveState;
use crate::cache_miss::Leader;
use crate::clock::{CacheTime, Clock, unix_millis};
use crate::flight::{Begin, Reentrant};
use crate::hooks::{Contents, Hooks};
use crate::options::CacheOptions;
use crate::query::Query;
use crate::shards::{Lookup, Shards, Tracked};
use crate::stats::{CacheStats, Counters};
use crate::store::Store;

/// A named cache of `K → V`: a cheap, cloneable handle to a map shared by every clone and every
/// thread, registered with a [`CacheManager`](crate::CacheManager).
///
/// Lookups return clones of the values; for large values store an `Arc<T>`. Hits take a shared
/// lock on one of the cache's shards only, so any number of threads read in parallel.
///
/// ```
/// use cacheman::CacheManager;
///
/// let dir = tempfile::tempdir().unwrap();
/// let manager = CacheManager::new("docs", dir.path());
/// let cache = manager.register_cache::<String, usize>("lengths").unwrap();
///
/// assert_eq!(cache.get_or_insert_with("hello".into(), || "hello".len()), 5);
/// assert_eq!(cache.get(&"hello".to_string()), Some(5));
/// cache.save().unwrap();
/// println!("{cache:?}"); // {"hello": 5}
/// ```
pub struct Cache<K, V> {
    pub(crate) inner: Arc<CacheInner<K, V>>,
}

impl<K, V> Clone for Cache<K, V> {
    fn clone(&self) -> Self {
        Cache {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// What [`CacheInner::find_counted`] found.
pub(crate) enum Found<V> {
    /// A hit, counted.
    Hit(V),
    /// A hit, counted, inside a computation that records what it reads: the entry is to be
    /// read again and recorded ([`CacheInner::read_in_computation`]).
    Recording(V),
    /// Not in the map: [`CacheInner::missed`] counts it, or serves an entry set aside.
    Missing,
}

pub(crate) enum Maps<K, V> {
    /// No time-to-live, no capacity: entries carry nothing but their value.
    Plain(Shards<K, V, ()>),
    Tracked(Shards<K, V, Tracked>),
}

/// Runs `$body` with `$s` bound to the shards and `$now` to the time in Unix milliseconds,
/// which is only read from the clock for tracked caches.
macro_rules! on_maps {
    ($inner:expr, $s:ident, $now:ident => $body:expr) => {
        match &$inner.maps {
            $crate::cache::Maps::Plain($s) => {
                let $now = 0;
                $body
            }
            $crate::cache::Maps::Tracked($s) => {
                let $now = $inner.now_ms();
                $body
            }
        }
    };
}
pub(crate) use on_maps;

/// Everything a cache is; shared by its handles and its manager.
pub(crate) struct CacheInner<K, V> {
    pub(crate) name: String,
    pub(crate) maps: Maps<K, V>,
    pub(crate) counters: Counters,
    pub(crate) hooks: RwLock<Hooks<K, V>>,
    pub(crate) store: Option<Box<dyn Store<K, V>>>,
    pub(crate) options: CacheOptions,
    pub(crate) clock: Arc<dyn Clock>,
    /// The clock as lookups read it (the coarse clock for expiry on the system's time).
    pub(crate) time: CacheTime,
    /// Bumped by every invalidation; saved in the file header.
    pub(crate) epoch: AtomicU64,
    /// How many of the changes counted in `counters` (inserts, removals, clears,
    /// invalidations) are in the file: the rest are pending. Counting per thread and settling
    /// here keeps a shared write off every insert. Negative when more is pending than was ever
    /// counted (built contents not saved yet).
    pub(crate) settled: AtomicI64,
    /// `clear()` was called since the last save: the next save does not merge in entries
    /// other processes saved before it.
    pub(crate) cleared: AtomicBool,
    /// Serializes saves, loads and invalidations of this cache, so a save that started before an
    /// invalidation can never write the old contents back after it.
    pub(crate) save_lock: Mutex<()>,
    /// Save points and the time of the last save.
    pub(crate) autosync: SaveState,
    /// The background compaction of the store's journal, if one runs.
    pub(crate) compaction: crate::lifecycle::Compaction<K, V>,
    /// The cache's place in its manager's entry graph (set once, at registration).
    pub(crate) deps: OnceLock<crate::deps::CacheLink>,
    /// The keys of entries that have a node in the graph, by stable hash: how the graph's
    /// invalidations (which know hashes only) find the entries to take off.
    pub(crate) recorded_keys: Mutex<crate::deps::HashMap<u64, K>>,
    /// How many recorded keys make the next insert look for keys whose entries are gone.
    pub(crate) prune_at: std::sync::atomic::AtomicUsize,
    /// Entries set aside because something they read changed: served again without running
    /// their body if their inputs turn out unchanged (see `cache_deps.rs`).
    pub(crate) parked: Mutex<crate::deps::HashMap<u64, (K, V)>>,
    /// Whether `parked` may hold anything: the only check a miss makes for it.
    pub(crate) has_parked: AtomicBool,
    /// Makes "check that nothing changed, then store" one step against what takes entries
    /// off the map: a computed (or set-aside) value is checked and stored under a read lock,
    /// and entries are taken off (and the cache invalidated) under the write lock, so a take-off
    /// can never fall between a check and its store (see `cache_deps.rs`).
    pub(crate) landing: RwLock<()>,
    /// Sections that store a value and give its node a stamp (landings, set-aside entries
    /// served again, inserts of entries with nodes) started and ended: a read inside a
    /// computation that overlapped one may have taken its value before and its stamp after,
    /// and records the stamp of the value itself instead (see `cache_deps.rs`).
    pub(crate) sections_started: AtomicU64,
    pub(crate) sections_ended: AtomicU64,
}

impl<K, V> CacheInner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(
        name: &str,
        options: CacheOptions,
        clock: Arc<dyn Clock>,
        hooks: Hooks<K, V>,
        store: Option<Box<dyn Store<K, V>>>,
    ) -> Self {
        let hasher = crate::shards::Hasher::default();
        let mut shard_count = crate::shards::default_shard_count();
        // Files may be saved by other processes too: journal changes to merge with theirs.
        // A shared store takes each change at once: nothing to merge.
        let journal = store.as_ref().is_some_and(|store| store.shared().is_none());
        let maps = if options.ttl.is_none() && options.capacity.is_none() {
            let limits = crate::shards::Limits {
                journal,
                ..Default::default()
            };
            Maps::Plain(Shards::new(shard_count, hasher.clone(), limits))
        } else {
            // Small bounded caches keep one exact recency order (see `CacheOptions::capacity`).
            if let Some(capacity) = options.capacity {
                while shard_count > 1 && capacity / shard_count < 512 {
                    shard_count /= 2;
                }
            }
            let limits = crate::shards::Limits {
                ttl: options.ttl,
                refresh: options.refresh,
                keep_expired: options.keep_expired,
                capacity: options.capacity,
                journal,
            };
            Maps::Tracked(Shards::new(shard_count, hasher.clone(), limits))
        };
        let autosync = SaveState::new(
            options.autosync.clone().unwrap_or_default(),
            unix_millis(clock.now()),
        );
        CacheInner {
            name: name.to_owned(),
            maps,
            counters: Counters::new(),
            hooks: RwLock::new(hooks),
            store,
            time: CacheTime::new(clock.clone(), options.ttl.is_some()),
            options,
            clock,
            epoch: AtomicU64::new(0),
            settled: AtomicI64::new(0),
            cleared: AtomicBool::new(false),
            save_lock: Mutex::new(()),
            autosync,
            compaction: Default::default(),
            deps: OnceLock::new(),
            recorded_keys: Mutex::default(),
            prune_at: std::sync::atomic::AtomicUsize::new(crate::cache_recorded::MIN_PRUNE_AT),
            parked: Mutex::default(),
            has_parked: AtomicBool::new(false),
            landing: RwLock::new(()),
            sections_started: AtomicU64::new(0),
            sections_ended: AtomicU64::new(0),
        }
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.time.now_ms()
    }

    pub(crate) fn note_changes(&self, n: u64) {
        if n > 0 {
            self.counters.changed(n);
        }
    }

    /// Changes not yet in the file (none on a shared store: it took each as it came).
    pub(crate) fn pending_changes(&self) -> u64 {
        if self.shared().is_some() {
            return 0;
        }
        let settled = self.settled.load(Ordering::Acquire);
        (self.counters.changes_made() as i64 - settled).max(0) as u64
    }

    /// Marks the changes up to `made` (a `changes_made()` read before a snapshot) as saved;
    /// changes counted since stay pending.
    pub(crate) fn settle(&self, made: u64) {
        self.settled.fetch_max(made as i64, Ordering::AcqRel);
    }

    /// Leaves exactly `pending` changes pending (a load: none; a build: what it built).
    pub(crate) fn set_pending(&self, pending: u64) {
        let made = self.counters.changes_made() as i64;
        self.settled.store(made - pending as i64, Ordering::Release);
    }

    /// A lookup that counts a hit or a miss. Inside the computation of another entry, the
    /// entry read is recorded as one of its inputs.
    #[inline(always)]
    pub(crate) fn lookup<Q: Query<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        match self.find_counted(key) {
            Found::Hit(value) => Some(value),
            Found::Recording(value) => Some(self.read_in_computation(key, value)),
            Found::Missing => self.missed(key),
        }
    }

    /// The hit path of [`CacheInner::lookup`], which counts a hit; what is left to do for
    /// the other outcomes is the caller's, out of line, so that a caller whose key is a
    /// temporary (`cached_fn::lookup`'s probe) can move it there and keep it in registers.
    #[inline(always)]
    pub(crate) fn find_counted<Q: Query<K> + ?Sized>(&self, key: &Q) -> Found<V> {
        let found = match &self.maps {
            Maps::Plain(s) => s.get(key, 0),
            // The coarse clock: no clock read on a hit (`clock.rs`).
            Maps::Tracked(s) => s.get_at(key, || self.time.lookup_ms()),
        };
        match found {
            Lookup::Hit(value) if self.counters.hit() => Found::Recording(value),
            Lookup::Hit(value) => Found::Hit(value),
            Lookup::Miss => Found::Missing,
        }
    }

    /// A key not in the map: an entry set aside may still be served once its inputs are
    /// checked.
    #[cold]
    #[inline(never)]
    pub(crate) fn missed<Q: Query<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        if self.has_parked.load(Ordering::Acquire)
            && let Some(value) = self.unpark(key)
        {
            if self.counters.hit() {
                self.note_read(key, &value, self.read_mark());
            }
            return Some(value);
        }
        if let Some(shared) = self.shared()
            && let Some(value) = self.fetch_shared(shared, key)
        {
            if self.counters.hit() {
                self.note_read(key, &value, self.read_mark());
            }
            return Some(value);
        }
        self.counters.miss();
        None
    }

    pub(crate) fn store(&self, key: K, value: V) -> Option<V> {
        // The graph learns of the new value after the map holds it: a computation that reads
        // the new value in between records the old stamp and is found stale at once (the
        // other order would let it record the new stamp with the old value).
        let by_hand = self
            .deps
            .get()
            .filter(|link| link.watched())
            .and_then(|link| Some((link, self.stamp_by_hand(link, &key, &value)?)));
        let (previous, evicted) = match by_hand {
            // An entry set aside before is older than this value: never served again.
            Some((link, (hash, stamp))) => {
                let _section = self.section();
                let stored = {
                    let _landing = self.landing();
                    let stored = on_maps!(self, s, now => s.insert(key, value, now));
                    self.drop_parked(hash);
                    stored
                };
                link.graph.replaced((link.id, hash), stamp);
                stored
            }
            None => on_maps!(self, s, now => s.insert(key, value, now)),
        };
        self.counters.inserted(evicted);
        previous
    }

    /// The guard of a caller that leads the computation of `key`.
    pub(crate) fn leader(&self, key: K) -> Leader<'_, K, V> {
        Leader::new(self, key)
    }

    /// Starts a miss: the value if it appeared meanwhile, a flight to wait on, or the lead.
    pub(crate) fn begin_miss(&self, key: &K, sync_caller: bool) -> Result<Begin<V>, Reentrant> {
        on_maps!(self, s, now => s.begin_miss(key, now, sync_caller))
    }

    /// Ends a miss: stores a computed value, unless the cache was invalidated while it was
    /// being computed (a value derived from data that was since invalidated must not outlive
    /// the invalidation), and hands the outcome to the waiters.
    pub(crate) fn finish_miss(&self, key: K, value: Option<&V>, epoch_before: u64, storable: bool) {
        let current =
            storable && self.epoch.load(Ordering::Acquire) == epoch_before && self.keeps_local();
        let store = value.filter(|_| current).cloned();
        let stored = store.is_some();
        let (in_flight, evicted) = on_maps!(self, s, now => s.finish_miss(key, store, now));
        if stored {
            self.counters.inserted(evicted);
        }
        if let Some(in_flight) = in_flight {
            // A value not stored may derive from what changed before a waiter looked: the
            // waiters try again (one of them leads a new computation).
            in_flight.land(value.filter(|_| stored));
        }
    }

    pub(crate) fn snapshot_rows(&self) -> Vec<(K, V, RowMeta)> {
        on_maps!(self, s, now => s.snapshot(now))
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The cache's name.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u8, u8>("bytes").unwrap();
    /// assert_eq!(cache.name(), "bytes");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// A clone of the value of `key`, if present (and not expired).
    ///
    /// `key` may be any borrowed form of the key type, as with `HashMap::get`: a
    /// `Cache<String, V>` is read with a `&str`, without building a `String`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, String>("names").unwrap();
    /// cache.insert(1, "one".into());
    /// assert_eq!(cache.get(&1).as_deref(), Some("one"));
    /// assert_eq!(cache.get(&2), None);
    ///
    /// let ids = manager.register_cache::<String, u32>("ids").unwrap();
    /// ids.insert("one".into(), 1);
    /// assert_eq!(ids.get("one"), Some(1));
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.lookup(key)
    }

    /// Stores `value` under `key` and returns the previous value.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// assert_eq!(cache.insert(1, 10), None);
    /// assert_eq!(cache.insert(1, 11), Some(10));
    /// ```
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        match self.inner.shared() {
            Some(shared) => self.inner.insert_shared(shared, key, value),
            None => self.inner.store(key, value),
        }
    }

    /// Removes `key` (any borrowed form of the key type, as for [`get`](Self::get)) and
    /// returns its value.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.insert(1, 10);
    /// assert_eq!(cache.remove(&1), Some(10));
    /// assert_eq!(cache.remove(&1), None);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        if let Some(shared) = inner.shared() {
            shared.remove(crate::deps::stable_hash(key));
        }
        let removed = match inner.deps.get().filter(|link| link.watched()) {
            // An entry set aside is removed too, or a later lookup would serve it again.
            Some(_) => {
                let _landing = inner.landing();
                let removed = on_maps!(inner, s, now => s.remove(key, now));
                inner.drop_parked(crate::deps::stable_hash(key));
                removed
            }
            None => on_maps!(inner, s, now => s.remove(key, now)),
        };
        if removed.is_some() {
            inner.note_changes(1);
        }
        removed
    }

    /// Whether `key` (any borrowed form of the key type, as for [`get`](Self::get)) has a
    /// (live) value. Counts neither a hit nor a miss.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.insert(1, 10);
    /// assert!(cache.contains_key(&1));
    /// assert!(!cache.contains_key(&2));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        on_maps!(self.inner, s, now => s.contains_key(key, now))
    }

    /// Number of entries held. Expired entries do not count: they are dropped first.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.extend([(1, 1), (2, 4)]);
    /// assert_eq!(cache.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        on_maps!(self.inner, s, now => s.len(now))
    }

    /// Whether the cache holds no entries.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// assert!(cache.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry of this cache, in memory only (its file keeps its contents until the
    /// next save). To clear the file and the dependents too, use [`invalidate`](Self::invalidate).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.insert(1, 1);
    /// cache.clear();
    /// assert!(cache.is_empty());
    /// ```
    pub fn clear(&self) {
        let dropped = {
            // Entries set aside go too, or a later lookup would serve them again.
            let _landing = self.inner.landing_exclusive();
            self.inner.drop_all_parked();
            on_maps!(self.inner, s, _now => s.clear())
        };
        self.inner.cleared.store(true, Ordering::Release);
        self.inner.note_changes(dropped.max(1) as u64);
        self.inner.prune_recorded();
    }

    /// Inserts every pair.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.extend((0..10).map(|n| (n, n * n)));
    /// assert_eq!(cache.get(&9), Some(81));
    /// ```
    pub fn extend(&self, pairs: impl IntoIterator<Item = (K, V)>) {
        for (key, value) in pairs {
            self.insert(key, value);
        }
    }

    /// Clones of the keys, in no particular order.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.extend([(2, 0), (1, 0)]);
    /// let mut keys = cache.keys();
    /// keys.sort();
    /// assert_eq!(keys, vec![1, 2]);
    /// ```
    pub fn keys(&self) -> Vec<K> {
        on_maps!(self.inner, s, now => s.keys(now))
    }

    /// A copy of the whole contents, taken one shard at a time (so it is not one atomic instant
    /// of a cache being written to by other threads).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.insert(1, 10);
    /// assert_eq!(cache.snapshot().get(&1), Some(&10));
    /// ```
    pub fn snapshot(&self) -> Contents<K, V> {
        self.inner
            .snapshot_rows()
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect()
    }

    /// Counters of hits, misses, inserts, evictions, loads and saves, the number of entries
    /// held, and the hit ratio (like Python's `lru_cache.cache_info()`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.insert(1, 1);
    /// cache.get(&1);
    /// cache.get(&2);
    /// let stats = cache.stats();
    /// assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 1));
    /// assert_eq!(stats.hit_ratio(), 0.5);
    /// ```
    pub fn stats(&self) -> CacheStats {
        let mut stats = self.inner.counters.snapshot();
        stats.entries = self.len() as u64;
        stats.store_errors = self.inner.shared().map_or(0, |shared| shared.errors());
        stats
    }

    /// The value of `key`, computing and storing it with `compute` on a miss.
    ///
    /// When several threads miss the same key at once, `compute` runs once and the others wait
    /// for its value; threads on other keys are not held up. If `compute` panics, the panic
    /// reaches its caller and one of the waiting threads computes instead.
    ///
    /// A value computed while the cache was invalidated is returned but not stored, since it
    /// may be derived from the data the invalidation threw away.
    ///
    /// # Panics
    ///
    /// If `compute` itself asks this cache for the same key on the same thread: that call
    /// could only wait on itself forever, so it panics with a message naming the cache.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u64, u64>("squares").unwrap();
    /// assert_eq!(cache.get_or_insert_with(12, || 12 * 12), 144);
    /// assert_eq!(cache.get_or_insert_with(12, || unreachable!()), 144);
    /// ```
    #[inline]
    pub fn get_or_insert_with(&self, key: K, compute: impl FnOnce() -> V) -> V {
        match self.get_or_try_insert_with(key, || Ok::<V, std::convert::Infallible>(compute())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with) for a computation that can fail:
    /// an `Err` is returned to the caller and nothing is stored.
    ///
    /// # Panics
    ///
    /// On a re-entrant call for the same key, as `get_or_insert_with`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<String, u32>("parsed").unwrap();
    /// let parse = |s: &str| cache.get_or_try_insert_with(s.to_owned(), || s.parse::<u32>());
    /// assert_eq!(parse("42"), Ok(42));
    /// assert!(parse("forty-two").is_err());
    /// assert_eq!(cache.len(), 1);
    /// ```
    #[inline]
    pub fn get_or_try_insert_with<E>(
        &self,
        key: K,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        // The hit path stays small enough to inline into callers (the `#[cached]` functions).
        match self.inner.lookup(&key) {
            Some(value) => Ok(value),
            None => self.compute_missing(key, compute),
        }
    }
}

impl<K, V> fmt::Debug for Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + fmt::Debug + 'static,
    V: Clone + Send + Sync + fmt::Debug + 'static,
{
    /// Prints the contents like a map: `{"raw": 5}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.inner.snapshot_rows();
        f.debug_map()
            .entries(rows.iter().map(|(k, v, _)| (k, v)))
            .finish()
    }
}
