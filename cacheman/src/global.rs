//! The process-wide managers, by name.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};

use crate::{CacheManager, Error};

/// Name of the default manager, as in CacheMan.
pub const DEFAULT_MANAGER: &str = "general_cache";

static MANAGERS: LazyLock<Mutex<HashMap<String, CacheManager>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn managers() -> MutexGuard<'static, HashMap<String, CacheManager>> {
    // Only whole insertions happen under this lock; poisoning leaves the map consistent.
    MANAGERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The global default manager, `general_cache`, in [`default_base_dir`].
///
/// ```
/// let manager = cacheman::get_cache_manager();
/// assert_eq!(manager.name(), "general_cache");
/// ```
pub fn get_cache_manager() -> CacheManager {
    get_cache_manager_named(DEFAULT_MANAGER)
}

/// The global manager called `name`, created in [`default_base_dir`] on first use.
///
/// ```
/// let a = cacheman::get_cache_manager_named("reports");
/// let b = cacheman::get_cache_manager_named("reports");
/// assert_eq!(a.directory(), b.directory());
/// ```
pub fn get_cache_manager_named(name: &str) -> CacheManager {
    managers()
        .entry(name.to_owned())
        .or_insert_with(|| CacheManager::new(name, default_base_dir()))
        .clone()
}

/// Installs `manager` as the global manager of its name, so that `get_cache_manager_named`
/// (and `#[cached]` functions) use it. Fails if a global manager of that name is already in use:
/// install it before the first use.
///
/// ```
/// use cacheman::CacheManager;
///
/// let dir = tempfile::tempdir().unwrap();
/// cacheman::set_cache_manager(CacheManager::new("docs_set", dir.path())).unwrap();
/// assert_eq!(cacheman::get_cache_manager_named("docs_set").directory(), dir.path().join("docs_set"));
/// assert!(cacheman::set_cache_manager(CacheManager::new("docs_set", dir.path())).is_err());
/// ```
pub fn set_cache_manager(manager: CacheManager) -> Result<(), Error> {
    let mut managers = managers();
    if managers.contains_key(manager.name()) {
        return Err(Error::ManagerInUse {
            manager: manager.name().to_owned(),
        });
    }
    managers.insert(manager.name().to_owned(), manager);
    Ok(())
}

/// Where global managers keep their directories: `$CACHEMAN_DIR` if set, else the user's cache
/// directory (`$XDG_CACHE_HOME`, or `~/.cache`) followed by `cacheman`.
///
/// Never `/tmp`: a world-writable default would let other users read or poison the cache.
/// Directories are created with mode 0700 when the first file is saved. If no home directory
/// can be found, `.cache/cacheman` under the current directory is used.
///
/// ```
/// let dir = cacheman::default_base_dir();
/// assert!(!dir.starts_with("/tmp") || std::env::var_os("CACHEMAN_DIR").is_some());
/// ```
pub fn default_base_dir() -> PathBuf {
    let non_empty = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("CACHEMAN_DIR") {
        return PathBuf::from(dir);
    }
    let cache_home = non_empty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::home_dir().map(|home| home.join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache_home.join("cacheman")
}
