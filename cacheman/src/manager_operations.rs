//! The operations CacheMan offers on a manager's caches by name: save, invalidate, delete the
//! saved contents, reload, rebuild, deregister, each with CacheMan's default for its
//! dependents and a method of its own for the other choice.

use crate::manager::{Dependents, read, write};
use crate::{CacheManager, Error};

/// The operations CacheMan offers by cache name. Each keeps CacheMan's name and its default
/// for `apply_to_dependents`; the other choice is a method of its own, named for it:
/// `_and_dependents` where CacheMan's default leaves the dependents alone, `_alone` where it
/// includes them.
impl CacheManager {
    /// Saves cache `name` (not its dependents, as CacheMan's default).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_cache::<u8, u8>("c").unwrap().insert(1, 1);
    /// manager.save_cache_contents("c").unwrap();
    /// ```
    pub fn save_cache_contents(&self, name: &str) -> Result<(), Error> {
        self.save_cache_contents_applying(name, Dependents::Exclude)
    }

    /// [`save_cache_contents`](Self::save_cache_contents) for `name` and every cache that depends
    /// on it, transitively, each once (CacheMan's `apply_to_dependents=True`).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_dependent_cache("root", "edge").unwrap();
    /// let root = manager.register_cache::<u8, u8>("root").unwrap();
    /// let edge = manager.register_cache::<u8, u8>("edge").unwrap();
    /// root.insert(1, 1);
    /// edge.insert(1, 5);
    /// manager.save_cache_contents_and_dependents("root").unwrap();
    /// assert!(manager.cache_file_path("edge").unwrap().exists());
    /// ```
    pub fn save_cache_contents_and_dependents(&self, name: &str) -> Result<(), Error> {
        self.save_cache_contents_applying(name, Dependents::Include)
    }

    /// Writes cache `name`'s whole contents as a new snapshot, which replaces the journal its
    /// saves append to (see [`Cache::compact`](crate::Cache::compact)).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u8, u8>("c").unwrap();
    /// cache.insert(1, 1);
    /// cache.save().unwrap();
    /// cache.insert(2, 2);
    /// cache.save().unwrap(); // appended to c.journal
    /// manager.compact_cache("c").unwrap();
    /// assert!(!manager.cache_file_path("c").unwrap().with_extension("journal").exists());
    /// ```
    pub fn compact_cache(&self, name: &str) -> Result<(), Error> {
        self.erased(name)?.compact()
    }

    fn save_cache_contents_applying(
        &self,
        name: &str,
        dependents: Dependents,
    ) -> Result<(), Error> {
        self.erased(name)?;
        self.apply(name, dependents, |c| c.save(), |_| Ok(()))
    }

    /// Saves every registered cache; returns the first error after trying them all.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_cache::<u8, u8>("a").unwrap().insert(1, 1);
    /// manager.save_all_cache_contents().unwrap();
    /// assert!(manager.cache_file_path("a").unwrap().exists());
    /// ```
    pub fn save_all_cache_contents(&self) -> Result<(), Error> {
        let caches: Vec<_> = read(&self.shared.caches).values().cloned().collect();
        let mut first_error = None;
        for cache in caches {
            if let Err(err) = cache.save() {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Clears cache `name` and every cache that depends on it, in memory and on disk, so that
    /// no stale value can come back from an old file.
    ///
    /// On disk, each file is replaced by an empty one carrying a new invalidation epoch (rather
    /// than deleted), so that other processes holding the old contents drop them at their next
    /// save or load instead of writing them back. Dependents that are declared or named in an
    /// edge but not registered in this process get the same empty file.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_dependent_cache("root", "edge").unwrap();
    /// let edge = manager.register_cache::<u8, u8>("edge").unwrap();
    /// edge.insert(1, 5);
    /// manager.invalidate_cache("root").unwrap();
    /// assert!(edge.is_empty());
    /// ```
    pub fn invalidate_cache(&self, name: &str) -> Result<(), Error> {
        self.invalidate_cache_applying(name, Dependents::Include)
    }

    /// [`invalidate_cache`](Self::invalidate_cache) for `name` alone, leaving the caches that
    /// depend on it as they are (CacheMan's `apply_to_dependents=False`).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_dependent_cache("root", "edge").unwrap();
    /// let root = manager.register_cache::<u8, u8>("root").unwrap();
    /// let edge = manager.register_cache::<u8, u8>("edge").unwrap();
    /// root.insert(1, 1);
    /// edge.insert(1, 5);
    /// manager.invalidate_cache_alone("root").unwrap();
    /// assert!(root.is_empty());
    /// assert_eq!(edge.get(&1), Some(5));
    /// ```
    pub fn invalidate_cache_alone(&self, name: &str) -> Result<(), Error> {
        self.invalidate_cache_applying(name, Dependents::Exclude)
    }

    fn invalidate_cache_applying(&self, name: &str, dependents: Dependents) -> Result<(), Error> {
        let include = dependents == Dependents::Include;
        // Caches on Redis: the whole set's generations move in one step first.
        #[cfg(feature = "redis")]
        if include {
            self.bump_redis_generations(name)?;
        }
        self.shared
            .entries
            .invalidate_caches(name, include, self.now_ms())
    }

    /// Removes the saved contents of `name` and its dependents, keeping what is in memory
    /// (CacheMan's `delete_saved_cache_content`).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let c = manager.register_cache::<u8, u8>("c").unwrap();
    /// c.insert(1, 1);
    /// c.save().unwrap();
    /// manager.delete_saved_cache_content("c").unwrap();
    /// assert!(!manager.cache_file_path("c").unwrap().exists());
    /// assert_eq!(c.get(&1), Some(1));
    /// ```
    pub fn delete_saved_cache_content(&self, name: &str) -> Result<(), Error> {
        self.delete_saved_cache_content_applying(name, Dependents::Include)
    }

    /// [`delete_saved_cache_content`](Self::delete_saved_cache_content) for `name` alone,
    /// leaving the caches that depend on it as they are (CacheMan's
    /// `apply_to_dependents=False`).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_dependent_cache("root", "edge").unwrap();
    /// let root = manager.register_cache::<u8, u8>("root").unwrap();
    /// let edge = manager.register_cache::<u8, u8>("edge").unwrap();
    /// root.insert(1, 1);
    /// edge.insert(1, 5);
    /// manager.save_all_cache_contents().unwrap();
    /// manager.delete_saved_cache_content_alone("root").unwrap();
    /// assert!(!manager.cache_file_path("root").unwrap().exists());
    /// assert!(manager.cache_file_path("edge").unwrap().exists());
    /// ```
    pub fn delete_saved_cache_content_alone(&self, name: &str) -> Result<(), Error> {
        self.delete_saved_cache_content_applying(name, Dependents::Exclude)
    }

    fn delete_saved_cache_content_applying(
        &self,
        name: &str,
        dependents: Dependents,
    ) -> Result<(), Error> {
        self.apply(
            name,
            dependents,
            |c| c.delete_saved(),
            |n| self.remove_unregistered_file(n),
        )
    }

    /// Replaces the contents of `name` with what its file (or loader) holds, or what its builder
    /// makes. A damaged or foreign file is an error here, and memory is left as it was.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let c = manager.register_cache::<u8, u8>("c").unwrap();
    /// c.insert(1, 1);
    /// c.save().unwrap();
    /// c.insert(2, 2);
    /// manager.reload_cache("c").unwrap();
    /// assert_eq!(c.len(), 1);
    /// ```
    pub fn reload_cache(&self, name: &str) -> Result<(), Error> {
        self.reload_cache_applying(name, Dependents::Exclude)
    }

    /// [`reload_cache`](Self::reload_cache) for `name` and every cache that depends
    /// on it, transitively, each once (CacheMan's `apply_to_dependents=True`).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_dependent_cache("root", "edge").unwrap();
    /// let root = manager.register_cache::<u8, u8>("root").unwrap();
    /// let edge = manager.register_cache::<u8, u8>("edge").unwrap();
    /// edge.insert(1, 5);
    /// manager.reload_cache_and_dependents("root").unwrap(); // nothing saved yet
    /// assert!(edge.is_empty());
    /// ```
    pub fn reload_cache_and_dependents(&self, name: &str) -> Result<(), Error> {
        self.reload_cache_applying(name, Dependents::Include)
    }

    fn reload_cache_applying(&self, name: &str, dependents: Dependents) -> Result<(), Error> {
        self.erased(name)?;
        self.apply(name, dependents, |c| c.reload(), |_| Ok(()))
    }

    /// Invalidates `name` and its dependents, then refills each from its builder.
    ///
    /// ```
    /// use cacheman::{CacheManager, Contents};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let c = manager.register_cache::<u8, u8>("c").unwrap();
    /// manager.register_builder("c", |_name: &str| Ok(Contents::from([(0u8, 42u8)]))).unwrap();
    /// c.insert(1, 1);
    /// manager.invalidate_and_rebuild_cache("c").unwrap();
    /// assert_eq!(c.snapshot(), Contents::from([(0, 42)]));
    /// ```
    pub fn invalidate_and_rebuild_cache(&self, name: &str) -> Result<(), Error> {
        self.invalidate_and_rebuild_cache_applying(name, Dependents::Include)
    }

    /// [`invalidate_and_rebuild_cache`](Self::invalidate_and_rebuild_cache) for `name` alone,
    /// leaving the caches that depend on it as they are (CacheMan's
    /// `apply_to_dependents=False`).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_dependent_cache("root", "edge").unwrap();
    /// let root = manager.register_cache::<u8, u8>("root").unwrap();
    /// let edge = manager.register_cache::<u8, u8>("edge").unwrap();
    /// edge.insert(1, 5);
    /// manager.invalidate_and_rebuild_cache_alone("root").unwrap();
    /// assert_eq!(edge.get(&1), Some(5));
    /// ```
    pub fn invalidate_and_rebuild_cache_alone(&self, name: &str) -> Result<(), Error> {
        self.invalidate_and_rebuild_cache_applying(name, Dependents::Exclude)
    }

    fn invalidate_and_rebuild_cache_applying(
        &self,
        name: &str,
        dependents: Dependents,
    ) -> Result<(), Error> {
        self.apply(
            name,
            dependents,
            |c| c.rebuild(),
            |n| {
                self.shared
                    .entries
                    .invalidate_caches(n, false, self.now_ms())
            },
        )
    }

    /// Forgets cache `name` (not its dependents, as CacheMan's default). Its pending changes
    /// are saved first, so re-registering it finds them; dependency edges stay.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_cache::<u8, u8>("c").unwrap().insert(1, 1);
    /// manager.deregister_cache("c").unwrap();
    /// assert!(!manager.cache_registered("c"));
    /// let again = manager.register_cache::<u8, u8>("c").unwrap();
    /// assert_eq!(again.get(&1), Some(1));
    /// ```
    pub fn deregister_cache(&self, name: &str) -> Result<(), Error> {
        self.deregister_cache_applying(name, Dependents::Exclude)
    }

    /// [`deregister_cache`](Self::deregister_cache) for `name` and every cache that depends
    /// on it, transitively, each once (CacheMan's `apply_to_dependents=True`).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.register_dependent_cache("root", "edge").unwrap();
    /// let root = manager.register_cache::<u8, u8>("root").unwrap();
    /// let edge = manager.register_cache::<u8, u8>("edge").unwrap();
    /// manager.deregister_cache_and_dependents("root").unwrap();
    /// assert!(!manager.cache_registered("edge"));
    /// ```
    pub fn deregister_cache_and_dependents(&self, name: &str) -> Result<(), Error> {
        self.deregister_cache_applying(name, Dependents::Include)
    }

    fn deregister_cache_applying(&self, name: &str, dependents: Dependents) -> Result<(), Error> {
        self.erased(name)?;
        self.apply(
            name,
            dependents,
            |c| {
                if c.is_persistent() && c.changes_since_save() > 0 {
                    c.save()?;
                }
                write(&self.shared.caches).remove(c.name());
                self.shared.entries.unlink(crate::deps::cache_id(c.name()));
                Ok(())
            },
            |_| Ok(()),
        )
    }
}
