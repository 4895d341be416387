//! The typed cache handle: a concurrent map with statistics and single-flight misses.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::hooks::Contents;
use crate::stats::CacheStats;

pub(crate) use crate::cache_inner::{CacheInner, Found, Maps, on_maps};

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
