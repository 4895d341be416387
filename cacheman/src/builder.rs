//! Hooks: registering them by cache name on a manager, or all at once when a cache is created
//! (CacheMan's `PersistentCache('my_cache', saver=..., loader=...)`).

use std::hash::Hash;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::cache::Cache;
use crate::error::HookError;
use crate::hooks::{Contents, Hooks};
use crate::manager::CacheManager;
use crate::options::CacheOptions;

/// Sets up a cache with its hooks before it first loads, so that a custom loader is the one
/// that fills it. Made by [`CacheManager::cache_builder`].
///
/// ```
/// use cacheman::{CacheManager, Contents};
///
/// let dir = tempfile::tempdir().unwrap();
/// let manager = CacheManager::new("docs", dir.path());
/// let cache = manager
///     .cache_builder::<String, String>("my_cache")
///     .saver(|name, contents| {
///         println!("Save requested on {name} cache ({} entries)", contents.len());
///         Ok(())
///     })
///     .loader(|_name| Ok(Some(Contents::from([("load".into(), "faked".into())]))))
///     .register()
///     .unwrap();
/// assert_eq!(cache.get("load").as_deref(), Some("faked"));
/// ```
#[must_use = "nothing is registered until `register` is called"]
pub struct CacheBuilder<K, V> {
    manager: CacheManager,
    name: String,
    options: CacheOptions,
    hooks: Hooks<K, V>,
}

impl CacheManager {
    /// Starts setting up cache `name` with hooks; finish with
    /// [`register`](CacheBuilder::register).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager
    ///     .cache_builder::<u32, u32>("evens")
    ///     .validator(|contents| contents.keys().all(|k| k % 2 == 0))
    ///     .register()
    ///     .unwrap();
    /// # drop(cache);
    /// ```
    pub fn cache_builder<K, V>(&self, name: &str) -> CacheBuilder<K, V> {
        CacheBuilder {
            manager: self.clone(),
            name: name.to_owned(),
            options: CacheOptions::new(),
            hooks: Hooks::default(),
        }
    }
}

impl<K, V> CacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The cache's options (default: [`CacheOptions::new`]).
    pub fn options(mut self, options: CacheOptions) -> Self {
        self.options = options;
        self
    }

    /// Replaces the default saver (which writes the cache file).
    pub fn saver(
        mut self,
        saver: impl Fn(&str, &Contents<K, V>) -> Result<(), HookError> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.saver = Some(Arc::new(saver));
        self
    }

    /// Replaces the default loader (which reads the cache file). `Ok(None)` means "nothing
    /// stored": the builder, if any, then fills the cache.
    pub fn loader(
        mut self,
        loader: impl Fn(&str) -> Result<Option<Contents<K, V>>, HookError> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.loader = Some(Arc::new(loader));
        self
    }

    /// Replaces the default deleter (which removes the cache file).
    pub fn deleter(
        mut self,
        deleter: impl Fn(&str) -> Result<(), HookError> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.deleter = Some(Arc::new(deleter));
        self
    }

    /// Checks loaded contents; when it returns `false` they are dropped and the cache starts
    /// from the builder, or empty.
    pub fn validator(
        mut self,
        validator: impl Fn(&Contents<K, V>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.hooks.validator = Some(Arc::new(validator));
        self
    }

    /// Makes the contents when nothing valid was loaded, and on `invalidate_and_rebuild`.
    pub fn builder(
        mut self,
        builder: impl Fn(&str) -> Result<Contents<K, V>, HookError> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.builder = Some(Arc::new(builder));
        self
    }

    /// Transforms the contents before they are saved.
    pub fn pre_processor(
        mut self,
        processor: impl Fn(Contents<K, V>) -> Contents<K, V> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.pre_processor = Some(Arc::new(processor));
        self
    }

    /// Transforms the contents after they are loaded or built.
    pub fn post_processor(
        mut self,
        processor: impl Fn(Contents<K, V>) -> Contents<K, V> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.post_processor = Some(Arc::new(processor));
        self
    }

    /// Registers the cache with its hooks and loads it.
    pub fn register(self) -> Result<Cache<K, V>, Error>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        self.manager
            .register_with_hooks(&self.name, self.options, self.hooks)
    }

    /// Registers it as a non-persistent cache, for types that are not serializable.
    pub fn register_memory(self) -> Result<Cache<K, V>, Error> {
        self.manager.register_memory_with_hooks(
            &self.name,
            self.options.persistent(false),
            self.hooks,
        )
    }
}

/// Setting hooks on registered caches by name, as CacheMan's `register_*` calls do. The hook's
/// argument types name the cache's types; a cache of other types is `Error::TypeMismatch`.
/// A hook set this way takes effect at the next save, load or invalidation.
impl CacheManager {
    fn set_hook<K, V>(&self, name: &str, set: impl FnOnce(&mut Hooks<K, V>)) -> Result<(), Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let cache = self.registered_cache::<K, V>(name)?;
        set(&mut cache.inner.hooks.write().unwrap_or_else(|e| e.into_inner()));
        // A saver gives a memory cache somewhere to save to: autosync starts watching it.
        crate::autosync::watch_if_saving(cache.inner);
        Ok(())
    }

    /// Replaces the saver of cache `name`.
    ///
    /// ```
    /// use cacheman::{CacheManager, Contents};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// manager.register_cache::<String, u32>("c").unwrap();
    /// manager
    ///     .register_saver("c", |name: &str, contents: &Contents<String, u32>| {
    ///         println!("saving {name}: {} entries", contents.len());
    ///         Ok(())
    ///     })
    ///     .unwrap();
    /// manager.save_cache_contents("c").unwrap();
    /// assert!(!manager.cache_file_path("c").unwrap().exists()); // the saver wrote nothing
    /// ```
    pub fn register_saver<K, V>(
        &self,
        name: &str,
        saver: impl Fn(&str, &Contents<K, V>) -> Result<(), HookError> + Send + Sync + 'static,
    ) -> Result<(), Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.set_hook::<K, V>(name, |h| h.saver = Some(Arc::new(saver)))
    }

    /// Replaces the loader of cache `name`; takes effect at the next reload.
    ///
    /// ```
    /// use cacheman::{CacheManager, Contents};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let c = manager.register_cache::<String, String>("c").unwrap();
    /// manager
    ///     .register_loader("c", |_: &str| {
    ///         Ok(Some(Contents::<String, String>::from([("load".into(), "faked".into())])))
    ///     })
    ///     .unwrap();
    /// manager.reload_cache("c").unwrap();
    /// assert_eq!(c.get("load").as_deref(), Some("faked"));
    /// ```
    pub fn register_loader<K, V>(
        &self,
        name: &str,
        loader: impl Fn(&str) -> Result<Option<Contents<K, V>>, HookError> + Send + Sync + 'static,
    ) -> Result<(), Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.set_hook::<K, V>(name, |h| h.loader = Some(Arc::new(loader)))
    }

    /// Replaces the deleter of cache `name`. The cache's types are named explicitly since the
    /// deleter does not mention them.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_cache::<u8, u8>("c").unwrap();
    /// manager.register_deleter::<u8, u8>("c", |name| { println!("delete {name}"); Ok(()) }).unwrap();
    /// manager.delete_saved_cache_content("c").unwrap();
    /// ```
    pub fn register_deleter<K, V>(
        &self,
        name: &str,
        deleter: impl Fn(&str) -> Result<(), HookError> + Send + Sync + 'static,
    ) -> Result<(), Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.set_hook::<K, V>(name, |h| h.deleter = Some(Arc::new(deleter)))
    }

    /// Sets the validator of cache `name`; it judges contents at the next load.
    ///
    /// ```
    /// use cacheman::{CacheManager, Contents};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let c = manager.register_cache::<u8, u8>("c").unwrap();
    /// c.insert(1, 200);
    /// c.save().unwrap();
    /// manager.register_validator("c", |c: &Contents<u8, u8>| c.values().all(|v| *v < 100)).unwrap();
    /// manager.reload_cache("c").unwrap();
    /// assert!(c.is_empty()); // rejected
    /// ```
    pub fn register_validator<K, V>(
        &self,
        name: &str,
        validator: impl Fn(&Contents<K, V>) -> bool + Send + Sync + 'static,
    ) -> Result<(), Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.set_hook::<K, V>(name, |h| h.validator = Some(Arc::new(validator)))
    }

    /// Sets the builder of cache `name`: it makes the contents when nothing valid is loaded,
    /// and on `invalidate_and_rebuild_cache`.
    ///
    /// ```
    /// use cacheman::{CacheManager, Contents};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let c = manager.register_cache::<u8, u8>("c").unwrap();
    /// manager.register_builder("c", |_: &str| Ok(Contents::from([(1u8, 1u8)]))).unwrap();
    /// manager.reload_cache("c").unwrap(); // no file: built
    /// assert_eq!(c.get(&1), Some(1));
    /// ```
    pub fn register_builder<K, V>(
        &self,
        name: &str,
        builder: impl Fn(&str) -> Result<Contents<K, V>, HookError> + Send + Sync + 'static,
    ) -> Result<(), Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.set_hook::<K, V>(name, |h| h.builder = Some(Arc::new(builder)))
    }

    /// Sets the processor applied to the contents of cache `name` before each save.
    ///
    /// ```
    /// use cacheman::{CacheManager, Contents};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let c = manager.register_cache::<u8, u8>("c").unwrap();
    /// manager
    ///     .register_pre_processor("c", |mut c: Contents<u8, u8>| { c.retain(|_, v| *v > 0); c })
    ///     .unwrap();
    /// c.extend([(1, 0), (2, 2)]);
    /// c.save().unwrap();
    /// manager.reload_cache("c").unwrap();
    /// assert_eq!(c.keys(), vec![2]);
    /// ```
    pub fn register_pre_processor<K, V>(
        &self,
        name: &str,
        processor: impl Fn(Contents<K, V>) -> Contents<K, V> + Send + Sync + 'static,
    ) -> Result<(), Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.set_hook::<K, V>(name, |h| h.pre_processor = Some(Arc::new(processor)))
    }

    /// Sets the processor applied to the contents of cache `name` after each load or build.
    ///
    /// ```
    /// use cacheman::{CacheManager, Contents};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let c = manager.register_cache::<u8, u8>("c").unwrap();
    /// c.insert(1, 1);
    /// c.save().unwrap();
    /// manager
    ///     .register_post_processor("c", |c: Contents<u8, u8>| c.into_iter().map(|(k, v)| (k, v * 10)).collect())
    ///     .unwrap();
    /// manager.reload_cache("c").unwrap();
    /// assert_eq!(c.get(&1), Some(10));
    /// ```
    pub fn register_post_processor<K, V>(
        &self,
        name: &str,
        processor: impl Fn(Contents<K, V>) -> Contents<K, V> + Send + Sync + 'static,
    ) -> Result<(), Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.set_hook::<K, V>(name, |h| h.post_processor = Some(Arc::new(processor)))
    }
}
