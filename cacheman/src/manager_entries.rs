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

    /// Writes the manager's dependency graph whole, as a new `.graph.deps`, which replaces the
    /// journal of graph saves (`.graph.journal`) and holds what other processes appended to
    /// it. Saves do this on their own, on a background thread, once the journal is larger
    /// than the graph file (and than 1 MiB); call this to do it now, say before copying the
    /// manager's directory elsewhere. Nothing is written for a manager whose caches recorded
    /// no dependencies.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let raw = manager.register_cache::<u64, u64>("raw").unwrap();
    /// let doubled = manager.register_cache::<u64, u64>("doubled").unwrap();
    /// doubled.get_or_insert_with(1, || raw.get_or_insert_with(1, || 21) * 2);
    /// manager.save_all_cache_contents().unwrap(); // the first save writes the graph whole
    /// doubled.get_or_insert_with(2, || raw.get_or_insert_with(2, || 5) * 2);
    /// manager.save_all_cache_contents().unwrap(); // later ones append to its journal
    /// assert!(manager.directory().join(".graph.journal").exists());
    /// manager.compact_graph().unwrap();
    /// assert!(!manager.directory().join(".graph.journal").exists());
    /// ```
    ///
    /// # Errors
    ///
    /// If the graph file cannot be written (the error names it).
    pub fn compact_graph(&self) -> Result<(), Error> {
        let graph = &self.shared.entries;
        graph.ensure_loaded();
        graph.compact()
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
