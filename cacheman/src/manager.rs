//! The manager: a registry of named caches in one directory, and the dependency graph between
//! them.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::autosync::AutoSync;
use crate::cache::{Cache, CacheInner};
use crate::clock::{Clock, SystemClock};
use crate::deps::{EntryGraph, Holder};
use crate::hooks::Hooks;
use crate::lifecycle::ErasedCache;
use crate::options::CacheOptions;
use crate::store::files::{cache_path, check_name, remove_file_durably};
use crate::store::{FileStore, Identity, Store};

/// Whether an operation on a cache also applies to the caches that depend on it: CacheMan's
/// `apply_to_dependents`. The public methods name it instead (`invalidate_cache_alone`,
/// `save_cache_contents_and_dependents`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Dependents {
    /// Apply to the cache and every cache that depends on it, transitively, each once.
    Include,
    /// Apply to the named cache only.
    Exclude,
}

/// The state shared by every handle of one manager.
pub(crate) struct ManagerShared {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) caches: RwLock<HashMap<String, Arc<dyn ErasedCache>>>,
    /// The clock of caches whose options name none.
    clock: RwLock<Arc<dyn Clock>>,
    /// The autosync policy of caches whose options name none.
    pub(crate) autosync: RwLock<AutoSync>,
    /// Per-entry dependencies between the caches' entries.
    pub(crate) entries: Arc<EntryGraph>,
    /// The Redis server of persistent caches whose options name no store.
    #[cfg(feature = "redis")]
    pub(crate) redis: RwLock<Option<crate::Redis>>,
}

/// A registry of named caches whose files live in one directory, and of the dependencies
/// between them. A cheap, cloneable handle; every clone sees the same caches.
///
/// Use [`get_cache_manager`](crate::get_cache_manager) for the global one, or
/// [`CacheManager::new`] for a standalone manager (tests give it a temporary directory).
///
/// ```
/// use cacheman::CacheManager;
///
/// let dir = tempfile::tempdir().unwrap();
/// let manager = CacheManager::new("my_app", dir.path());
/// let cache = manager.register_cache::<String, u64>("word_counts").unwrap();
/// cache.insert("hello".into(), 1);
/// manager.save_cache_contents("word_counts").unwrap();
/// assert!(dir.path().join("my_app/word_counts.cache").exists());
/// ```
#[derive(Clone)]
pub struct CacheManager {
    pub(crate) shared: Arc<ManagerShared>,
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // Writers only insert or remove whole entries; a poisoned registry is still consistent.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl CacheManager {
    /// A standalone manager named `name` whose files live in `<base_dir>/<name>/`.
    ///
    /// Nothing is created on disk until a cache is saved. A name that cannot be a directory name
    /// (see [`Error::InvalidName`]) makes every registration fail with that error.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("tests", dir.path());
    /// assert_eq!(manager.name(), "tests");
    /// assert_eq!(manager.directory(), dir.path().join("tests"));
    /// ```
    pub fn new(name: &str, base_dir: impl Into<PathBuf>) -> CacheManager {
        let dir = base_dir.into().join(name);
        let manager = CacheManager {
            shared: Arc::new(ManagerShared {
                name: name.to_owned(),
                entries: EntryGraph::new(name, &dir),
                dir,
                caches: RwLock::new(HashMap::new()),
                clock: RwLock::new(Arc::new(SystemClock)),
                autosync: RwLock::new(AutoSync::default()),
                #[cfg(feature = "redis")]
                redis: RwLock::new(None),
            }),
        };
        // Every cache a `#[cached]` function declares for this manager is known from the start.
        crate::declarations::apply(&manager);
        manager
    }

    /// The manager's name.
    ///
    /// ```
    /// assert_eq!(cacheman::get_cache_manager().name(), "general_cache");
    /// ```
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The directory holding this manager's cache files.
    ///
    /// ```
    /// let manager = cacheman::CacheManager::new("m", "/var/cache/app");
    /// assert_eq!(manager.directory(), std::path::Path::new("/var/cache/app/m"));
    /// ```
    pub fn directory(&self) -> &Path {
        &self.shared.dir
    }

    /// Sets the clock of the caches registered from now on whose options name none (default:
    /// [`SystemClock`]). Tests give a [`ManualClock`](crate::ManualClock) to move time by hand.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cacheman::{CacheManager, CacheOptions, ManualClock};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let clock = ManualClock::new();
    /// manager.set_clock(clock.clone());
    /// let cache = manager
    ///     .register_custom_cache::<u8, u8>("short", CacheOptions::new().ttl(Duration::from_secs(60)))
    ///     .unwrap();
    /// cache.insert(1, 1);
    /// clock.advance(Duration::from_secs(61));
    /// assert_eq!(cache.get(&1), None);
    /// ```
    pub fn set_clock(&self, clock: impl Clock) {
        *write(&self.shared.clock) = Arc::new(clock);
    }

    /// The clock given to caches whose options name none.
    ///
    /// ```
    /// use cacheman::Clock;
    /// let now = cacheman::get_cache_manager().clock().now();
    /// assert!(now > std::time::UNIX_EPOCH);
    /// ```
    pub fn clock(&self) -> Arc<dyn Clock> {
        read(&self.shared.clock).clone()
    }

    /// The file cache `name` is saved to by default.
    ///
    /// ```
    /// let manager = cacheman::CacheManager::new("m", "/var/cache/app");
    /// let path = manager.cache_file_path("root").unwrap();
    /// assert_eq!(path, std::path::Path::new("/var/cache/app/m/root.cache"));
    /// assert!(manager.cache_file_path("../escape").is_err());
    /// ```
    pub fn cache_file_path(&self, name: &str) -> Result<PathBuf, Error> {
        check_name("manager", &self.shared.name)?;
        check_name("cache", name)?;
        Ok(cache_path(&self.shared.dir, name))
    }

    /// Registers a persistent cache with the default options, loading what its file holds.
    ///
    /// A file that cannot be used (corrupt, truncated, written for other types) is logged with
    /// `log::warn!` and the cache starts empty; the file is left alone until the next save
    /// replaces it. Use [`reload_cache`](Self::reload_cache) to get such problems as errors.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u64, String>("names").unwrap();
    /// assert!(manager.register_cache::<u64, String>("names").is_err()); // already registered
    /// # drop(cache);
    /// ```
    pub fn register_cache<K, V>(&self, name: &str) -> Result<Cache<K, V>, Error>
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.register_custom_cache(name, CacheOptions::new())
    }

    /// Registers a cache with `options`: persistent or not, codec, capacity, time-to-live.
    ///
    /// ```
    /// use cacheman::{CacheManager, CacheOptions};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let cache = manager
    ///     .register_custom_cache::<u32, u32>("scratch", CacheOptions::new().persistent(false))
    ///     .unwrap();
    /// cache.insert(1, 1);
    /// cache.save().unwrap(); // no file is written
    /// assert!(!manager.cache_file_path("scratch").unwrap().exists());
    /// ```
    pub fn register_custom_cache<K, V>(
        &self,
        name: &str,
        options: CacheOptions,
    ) -> Result<Cache<K, V>, Error>
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.register_with_hooks(name, options, Hooks::default())
    }

    /// Registers a non-persistent cache for types that are not serializable. It never touches
    /// a file (a custom saver or loader, if registered, still runs).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cacheman::{CacheManager, CacheOptions};
    ///
    /// struct Connection; // not Serialize
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let pool = manager
    ///     .register_memory_cache::<u32, Arc<Connection>>("pool", CacheOptions::new())
    ///     .unwrap();
    /// pool.insert(1, Arc::new(Connection));
    /// assert_eq!(pool.len(), 1);
    /// ```
    pub fn register_memory_cache<K, V>(
        &self,
        name: &str,
        options: CacheOptions,
    ) -> Result<Cache<K, V>, Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.register_memory_with_hooks(name, options.persistent(false), Hooks::default())
    }

    pub(crate) fn register_with_hooks<K, V>(
        &self,
        name: &str,
        options: CacheOptions,
        hooks: Hooks<K, V>,
    ) -> Result<Cache<K, V>, Error>
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        #[cfg(feature = "redis")]
        if let Some(store) = self.redis_store(name, &options)? {
            return self.register_erased(name, options, hooks, Some(store));
        }
        let store: Option<Box<dyn Store<K, V>>> = if options.persistent {
            let path = self.cache_file_path(name)?;
            let identity =
                Identity::new::<K, V>(options.codec, options.fn_fingerprint, options.ttl.is_some())
                    .with_counts(options.capacity.is_some());
            let store = FileStore::new(name, path, identity);
            Some(Box::new(match options.compact_from {
                Some(bytes) => store.with_compaction_from(bytes),
                None => store,
            }))
        } else {
            None
        };
        self.register_erased(name, options, hooks, store)
    }

    pub(crate) fn register_memory_with_hooks<K, V>(
        &self,
        name: &str,
        options: CacheOptions,
        hooks: Hooks<K, V>,
    ) -> Result<Cache<K, V>, Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        if options.persistent {
            return Err(Error::InvalidOptions {
                cache: name.to_owned(),
                reason: "a memory cache cannot be persistent; use `register_custom_cache` \
                         (which needs serde) for a persistent one"
                    .into(),
            });
        }
        self.register_erased(name, options, hooks, None)
    }

    fn register_erased<K, V>(
        &self,
        name: &str,
        mut options: CacheOptions,
        hooks: Hooks<K, V>,
        store: Option<Box<dyn Store<K, V>>>,
    ) -> Result<Cache<K, V>, Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        check_name("manager", &self.shared.name)?;
        check_name("cache", name)?;
        crate::declarations::check_declared_types::<K, V>(&self.shared.name, name)?;
        if options.capacity == Some(0) {
            return Err(Error::InvalidOptions {
                cache: name.to_owned(),
                reason: "a capacity of 0 could hold nothing; give at least 1".into(),
            });
        }
        if let Some(reason) = options.without_ttl() {
            return Err(Error::InvalidOptions {
                cache: name.to_owned(),
                reason: reason.into(),
            });
        }
        if self.cache_registered(name) {
            return Err(self.already_registered(name));
        }
        let clock = options.clock.clone().unwrap_or_else(|| self.clock());
        if options.autosync.is_none() {
            options.autosync = Some(self.autosync());
        }
        let fn_fingerprint = options.fn_fingerprint;
        let inner = Arc::new(CacheInner::new(name, options, clock, hooks, store));
        inner.compaction.enable(Arc::downgrade(&inner));
        let holder: Arc<dyn Holder> = inner.clone();
        let link = self.shared.entries.link(
            name,
            fn_fingerprint,
            inner.store.is_some(),
            Arc::downgrade(&holder),
        );
        // A fresh `OnceLock`: setting it cannot fail.
        let _ = inner.deps.set(link);
        CacheInner::watch_shared(&inner);
        // Load outside the registry lock: reading a big file must not stall other caches.
        inner.load_or_build(false)?;
        let mut caches = write(&self.shared.caches);
        if let Some(registered) = caches.get(name) {
            // Lost a race with another registration: give the graph back the cache that won.
            let winner: Arc<dyn Holder> = registered.clone();
            let fp = fn_fingerprint;
            let persistent = registered.is_persistent();
            drop(caches);
            self.shared
                .entries
                .link(name, fp, persistent, Arc::downgrade(&winner));
            return Err(self.already_registered(name));
        }
        caches.insert(name.to_owned(), inner.clone());
        drop(caches);
        crate::autosync::watch_if_saving(inner.clone());
        Ok(Cache { inner })
    }

    fn already_registered(&self, name: &str) -> Error {
        Error::AlreadyRegistered {
            manager: self.shared.name.clone(),
            cache: name.to_owned(),
        }
    }

    /// The registered cache `name`, or a newly registered persistent one with the default
    /// options (as CacheMan's `retrieve_cache` does).
    ///
    /// Use it where the cache may not exist yet and the default options suit it; it may load
    /// a file. To get a cache that must already be registered, with no side effect, use
    /// [`registered_cache`](Self::registered_cache).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let a = manager.retrieve_cache::<u32, u32>("c").unwrap();
    /// a.insert(1, 1);
    /// let b = manager.retrieve_cache::<u32, u32>("c").unwrap();
    /// assert_eq!(b.get(&1), Some(1)); // the same cache
    /// assert!(manager.retrieve_cache::<u32, String>("c").is_err()); // TypeMismatch
    /// ```
    pub fn retrieve_cache<K, V>(&self, name: &str) -> Result<Cache<K, V>, Error>
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        loop {
            match self.registered_cache(name) {
                Err(Error::CacheNotFound { .. }) => {}
                found => return found,
            }
            match self.register_cache(name) {
                // Another thread registered it between our look and our registration.
                Err(Error::AlreadyRegistered { .. }) => continue,
                registered => return registered,
            }
        }
    }

    /// The registered cache `name`, without registering one (CacheMan's `retrieve_raise`).
    ///
    /// Use it where the cache must already exist (it was registered with options of its own,
    /// or by its `#[cached]` function's first call): it never registers, loads or creates
    /// anything, and a missing cache is [`Error::CacheNotFound`].
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// assert!(manager.registered_cache::<u32, u32>("nope").is_err());
    /// ```
    pub fn registered_cache<K, V>(&self, name: &str) -> Result<Cache<K, V>, Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let erased = self.erased(name)?;
        let (registered_key, registered_value) = (erased.key_type(), erased.value_type());
        match erased.into_any().downcast::<CacheInner<K, V>>() {
            Ok(inner) => Ok(Cache { inner }),
            Err(_) => Err(Error::TypeMismatch {
                cache: name.to_owned(),
                registered_key,
                registered_value,
                requested_key: std::any::type_name::<K>(),
                requested_value: std::any::type_name::<V>(),
            }),
        }
    }

    /// Every registered cache, for a pass over all of them outside the registry lock.
    pub(crate) fn registered_caches(&self) -> Vec<Arc<dyn ErasedCache>> {
        read(&self.shared.caches).values().cloned().collect()
    }

    pub(crate) fn erased(&self, name: &str) -> Result<Arc<dyn ErasedCache>, Error> {
        read(&self.shared.caches)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::CacheNotFound {
                manager: self.shared.name.clone(),
                cache: name.to_owned(),
            })
    }

    /// Whether a cache named `name` is registered.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// assert!(!manager.cache_registered("c"));
    /// manager.register_cache::<u8, u8>("c").unwrap();
    /// assert!(manager.cache_registered("c"));
    /// ```
    pub fn cache_registered(&self, name: &str) -> bool {
        read(&self.shared.caches).contains_key(name)
    }

    /// The names of the registered caches, sorted.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_cache::<u8, u8>("b").unwrap();
    /// manager.register_cache::<u8, u8>("a").unwrap();
    /// assert_eq!(manager.cache_names(), vec!["a", "b"]);
    /// ```
    pub fn cache_names(&self) -> Vec<String> {
        let mut names: Vec<String> = read(&self.shared.caches).keys().cloned().collect();
        names.sort();
        names
    }

    /// Declares that `dependent_name` is derived from `cache_name`: invalidating `cache_name`
    /// also invalidates `dependent_name` (and what depends on it). Either cache may be
    /// registered before or after the edge. An edge that closes a cycle is refused.
    ///
    /// ```
    /// use cacheman::{CacheManager, Error};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// manager.register_dependent_cache("root", "edge").unwrap();
    /// let err = manager.register_dependent_cache("edge", "root").unwrap_err();
    /// assert!(matches!(err, Error::DependencyCycle { .. }));
    /// ```
    pub fn register_dependent_cache(
        &self,
        cache_name: &str,
        dependent_name: &str,
    ) -> Result<(), Error> {
        check_name("cache", cache_name)?;
        check_name("cache", dependent_name)?;
        self.shared
            .entries
            .add_edge(cache_name, dependent_name)
            .map_err(|path| Error::DependencyCycle {
                manager: self.shared.name.clone(),
                path,
            })
    }

    /// Every cache that depends on `name`, directly or not, nearest first.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_dependent_cache("a", "b").unwrap();
    /// manager.register_dependent_cache("b", "c").unwrap();
    /// assert_eq!(manager.dependents_of("a"), vec!["b", "c"]);
    /// ```
    pub fn dependents_of(&self, name: &str) -> Vec<String> {
        self.shared.entries.dependents_of(name)
    }

    /// `name` and, with `Dependents::Include`, its transitive dependents, each once.
    fn targets(&self, name: &str, dependents: Dependents) -> Result<Vec<String>, Error> {
        if !self.shared.entries.is_known(name) {
            return Err(Error::CacheNotFound {
                manager: self.shared.name.clone(),
                cache: name.to_owned(),
            });
        }
        let mut names = vec![name.to_owned()];
        if dependents == Dependents::Include {
            names.extend(self.dependents_of(name));
        }
        Ok(names)
    }

    /// Runs `registered` on each target that is registered, and `unregistered` on the others;
    /// every target is tried, and the first error is returned.
    pub(crate) fn apply(
        &self,
        name: &str,
        dependents: Dependents,
        registered: impl Fn(&dyn ErasedCache) -> Result<(), Error>,
        unregistered: impl Fn(&str) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut first_error = None;
        for target in self.targets(name, dependents)? {
            let outcome = match self.erased(&target) {
                Ok(cache) => registered(&*cache),
                Err(_) => unregistered(&target),
            };
            if let Err(err) = outcome {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub(crate) fn now_ms(&self) -> u64 {
        crate::clock::unix_millis(self.clock().now())
    }

    /// Removes the default file of a cache that is not registered in this process.
    pub(crate) fn remove_unregistered_file(&self, name: &str) -> Result<(), Error> {
        let path = self.cache_file_path(name)?;
        remove_file_durably(&path).map_err(|source| Error::Io {
            cache: name.to_owned(),
            action: "remove the cache file",
            path,
            source,
        })
    }
}

impl fmt::Debug for CacheManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheManager")
            .field("name", &self.shared.name)
            .field("directory", &self.shared.dir)
            .field("caches", &self.cache_names())
            .finish()
    }
}
