//! Changing caches from outside the program: clearing one, invalidating one and what depends
//! on it. Both go through the library's own invalidation (lock file, epoch, graph), so a
//! program running meanwhile drops what it holds at its next save or load instead of writing
//! it back.

use std::path::Path;

use crate::{CacheManager, Error};

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Empties cache `cache` of the manager whose directory is `manager_dir`: its file is replaced
/// by an empty one at a newer invalidation epoch, under its lock. A running program drops its
/// entries at its next save or load. What other caches derived from them is left: their
/// recorded stamps are checked again when the cleared entries are recomputed, and only entries
/// whose input comes out different are recomputed in turn. To throw the derived entries away
/// as well, use [`invalidate`].
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let manager = cacheman::CacheManager::new("app", dir.path());
/// let cache = manager.register_cache::<u32, u32>("c").unwrap();
/// cache.insert(1, 1);
/// cache.save().unwrap();
/// cacheman::inspect::clear(manager.directory(), "c").unwrap();
/// cache.reload().unwrap();
/// assert!(cache.is_empty());
/// ```
pub fn clear(manager_dir: &Path, cache: &str) -> Result<(), Error> {
    crate::store::files::check_name("cache", cache)?;
    let path = crate::store::files::cache_path(manager_dir, cache);
    crate::store::write_invalidation_marker(cache, &path, now_ms())
}

/// Invalidates cache `cache` of the manager whose directory is `manager_dir`, as
/// [`CacheManager::invalidate_cache`] does in the program: its file is emptied at a newer
/// epoch, every entry of another cache recorded as having read one of its entries is marked
/// for recomputation in the dependency graph, and with `dependents` every cache declared to
/// depend on it (as recorded in the manifest) is invalidated the same way. Returns the caches
/// invalidated whole, `cache` first.
///
/// # Errors
/// [`Error::CacheNotFound`] when neither a file nor the manifest knows `cache`; I/O errors
/// naming the file.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let manager = cacheman::CacheManager::new("app", dir.path());
/// manager.register_dependent_cache("root", "edge").unwrap();
/// let root = manager.register_cache::<u32, u32>("root").unwrap();
/// let edge = manager.register_cache::<u32, u32>("edge").unwrap();
/// root.insert(1, 1);
/// edge.insert(1, 5);
/// manager.save_all_cache_contents().unwrap();
///
/// let gone = cacheman::inspect::invalidate(manager.directory(), "root", true).unwrap();
/// assert_eq!(gone, ["root", "edge"]);
/// edge.reload().unwrap();
/// assert!(edge.is_empty());
/// ```
pub fn invalidate(manager_dir: &Path, cache: &str, dependents: bool) -> Result<Vec<String>, Error> {
    crate::store::files::check_name("cache", cache)?;
    let name = manager_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = manager_dir.parent().unwrap_or(Path::new("."));
    let manager = CacheManager::new(&name, base);
    let graph = &manager.shared.entries;
    let found = super::read_manager(manager_dir);
    if let Some(manifest) = &found.manifest {
        for (cache, recorded) in &manifest.caches {
            graph.declare_recorded(cache, recorded.persistent);
            for dependent in &recorded.dependents {
                // A cycle cannot be in a manifest a program wrote; one forged is not followed.
                let _ = graph.add_edge(cache, dependent);
            }
        }
    }
    for file in found.caches.iter().filter(|f| f.exists) {
        graph.declare_recorded(&file.name, true);
    }
    let mut targets = vec![cache.to_owned()];
    if dependents {
        targets.extend(graph.dependents_of(cache));
    }
    graph.invalidate_caches(cache, dependents, now_ms())?;
    Ok(targets)
}
