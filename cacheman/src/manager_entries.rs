//! The manager's operations on single entries and on the inputs that are not caches.

use std::hash::Hash;

use crate::deps::{cache_id, stable_hash};
use crate::{CacheManager, Error};

impl CacheManager {
    /// Invalidates the entry of `key` in cache `cache` and, transitively, exactly the entries
    /// that read it (see [`Cache::invalidate_key`](crate::Cache::invalidate_key)), whether or
    /// not the cache is registered in this process: its file is not served from for that key
    /// in a later process. `key` must be of the cache's key type (it is found by its hash).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let squares = manager.register_cache::<u64, u64>("squares").unwrap();
    /// squares.get_or_insert_with(3, || 9);
    /// manager.invalidate_entry("squares", &3u64).unwrap();
    /// assert_eq!(squares.get(&3), None);
    /// ```
    ///
    /// # Errors
    ///
    /// If the cache's name is invalid, or the manager's graph file cannot be written.
    pub fn invalidate_entry<Q: Hash + ?Sized>(&self, cache: &str, key: &Q) -> Result<(), Error> {
        crate::store::files::check_name("cache", cache)?;
        let graph = &self.shared.entries;
        graph.ensure_loaded();
        graph.invalidate([((cache_id(cache), stable_hash(key)), None)]);
        graph.save()
    }

    /// Looks at every file recorded with [`track_file`](crate::track_file) again: entries
    /// that read a file whose contents changed are recomputed at their next lookup. Files are
    /// also looked at when the first cache of the manager is registered (so a file edited
    /// between two runs is seen), and when an entry set aside by an invalidation is checked;
    /// a long-running program calls this when it knows files may have changed.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let lines = manager.register_cache::<String, usize>("lines").unwrap();
    /// let file = dir.path().join("input.txt");
    /// std::fs::write(&file, "a\nb\n").unwrap();
    /// let count = || lines.get_or_insert_with("input".into(), || {
    ///     cacheman::track_file(&file);
    ///     std::fs::read_to_string(&file).unwrap().lines().count()
    /// });
    /// assert_eq!(count(), 2);
    /// std::fs::write(&file, "a\nb\nc\n").unwrap();
    /// manager.check_tracked_files();
    /// assert_eq!(count(), 3);
    /// ```
    pub fn check_tracked_files(&self) {
        self.shared.entries.check_files();
    }
}
