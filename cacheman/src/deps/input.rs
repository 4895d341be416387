//! Inputs: what a computation read, and the inputs that are not cache entries (files and
//! labelled values).

use std::hash::Hash;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::{StableHasher, frame, stable_hash};

/// Where an input came from: a cache (by id) and key hash, or one of the reserved sources.
pub(crate) struct Source;

impl Source {
    /// Inputs that are files; their key is the hash of the path.
    pub(crate) const FILES: u64 = 0;
    /// Inputs that are labelled values ([`track_value`]); their key is the hash of the label.
    pub(crate) const VALUES: u64 = 1;
    /// Cache ids start here.
    pub(crate) const FIRST_CACHE: u64 = 2;
}

/// One input of an entry: 24 bytes, hashes only (no copies of keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Input {
    /// A cache id, or [`Source::FILES`] / [`Source::VALUES`].
    pub source: u64,
    /// The stable hash of the key, path or label.
    pub key: u64,
    /// The stamp it had when it was read.
    pub seen: u64,
}

impl Input {
    pub(crate) fn node(&self) -> (u64, u64) {
        (self.source, self.key)
    }
}

/// What is known of a tracked file: enough to tell, from its metadata alone, that it did not
/// change; its contents are hashed again only when the metadata changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileState {
    pub path: PathBuf,
    pub len: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub modified_ns: u64,
    /// The stamp inputs compare: a hash of the contents (0 for a file that could not be read).
    pub stamp: u64,
}

/// The stamp of a file that does not exist or cannot be read.
pub(crate) const MISSING_FILE: u64 = 0;

impl FileState {
    /// Reads the file's metadata, and its contents when `known` (what was recorded before)
    /// does not already vouch for them.
    pub(crate) fn read(path: &Path, known: Option<&FileState>) -> FileState {
        let missing = || FileState {
            path: path.to_owned(),
            len: 0,
            modified_ns: 0,
            stamp: MISSING_FILE,
        };
        let Ok(meta) = std::fs::metadata(path) else {
            return missing();
        };
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        if let Some(known) = known
            && known.len == meta.len()
            && known.modified_ns == modified_ns
            && known.stamp != MISSING_FILE
        {
            return known.clone();
        }
        match hash_contents(path) {
            Ok(stamp) => FileState {
                path: path.to_owned(),
                len: meta.len(),
                modified_ns,
                stamp,
            },
            Err(err) => {
                log::warn!(
                    "cacheman: could not read tracked file {}: {err}; entries that read it are \
                     recomputed until it can be read",
                    path.display()
                );
                missing()
            }
        }
    }
}

fn hash_contents(path: &Path) -> std::io::Result<u64> {
    use std::hash::Hasher;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = StableHasher::default();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.write(&buffer[..n]);
    }
    // Never the missing-file stamp, so that an empty file differs from no file.
    Ok(hasher.finish().max(MISSING_FILE + 1))
}

/// Records the file at `path` as an input of the entry being computed: when its contents
/// change, the entry (and whatever read it) is recomputed at its next lookup, also in a later
/// process.
///
/// Its size and modification time are read, and its contents hashed when those changed since
/// the manager last looked (so a file that is touched but not changed costs no recomputation).
/// Outside the computation of a cached entry this does nothing. Changes made while a process
/// runs are seen when a cache of the manager loads, at [`CacheManager::check_tracked_files`],
/// and when an entry left aside by an invalidation is checked again.
///
/// [`CacheManager::check_tracked_files`]: crate::CacheManager::check_tracked_files
///
/// ```
/// use cacheman::cached;
/// # let dir = tempfile::tempdir().unwrap();
/// # let manager = cacheman::CacheManager::new("general_cache", dir.path());
/// # manager.set_autosync(cacheman::AutoSync::disabled());
/// # cacheman::set_cache_manager(manager).unwrap();
/// # let config = dir.path().join("app.toml");
/// # std::fs::write(&config, "threads = 4").unwrap();
///
/// #[cached]
/// fn setting_count(path: &std::path::Path) -> usize {
///     cacheman::track_file(path);
///     std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
/// }
///
/// assert_eq!(setting_count(&config), 1);
/// ```
pub fn track_file(path: impl AsRef<Path>) {
    let Some(graph) = frame::current_graph() else {
        return;
    };
    let input = graph.track_file(path.as_ref());
    frame::record(&graph, input);
}

/// Records `value`, under `label`, as an input of the entry being computed: an entry that read
/// one value of a label is recomputed once the label is tracked with another value (a
/// configuration, an environment variable, a model version).
///
/// Called outside a computation, it sets the label's current value in every manager that has
/// seen the label, invalidating what read another value: call it at start-up with the values
/// your cached functions depend on, so that entries saved by a run with other values are not
/// served before a body runs again. Values are compared by a stable hash of what their `Hash`
/// implementation writes.
///
/// ```
/// use cacheman::cached;
/// # let dir = tempfile::tempdir().unwrap();
/// # let manager = cacheman::CacheManager::new("general_cache", dir.path());
/// # manager.set_autosync(cacheman::AutoSync::disabled());
/// # cacheman::set_cache_manager(manager).unwrap();
///
/// fn language() -> String {
///     std::env::var("APP_LANG").unwrap_or_else(|_| "en".into())
/// }
///
/// #[cached]
/// fn greeting(name: &str) -> String {
///     let lang = language();
///     cacheman::track_value("APP_LANG", &lang);
///     if lang == "fr" { format!("Bonjour {name}") } else { format!("Hello {name}") }
/// }
///
/// cacheman::track_value("APP_LANG", &language()); // at start-up
/// assert_eq!(greeting("Ada"), "Hello Ada");
/// ```
pub fn track_value<T: Hash + ?Sized>(label: &str, value: &T) {
    let key = stable_hash(label);
    let stamp = stable_hash(value);
    match frame::current_graph() {
        Some(graph) => {
            let input = graph.track_value(key, label, stamp);
            frame::record(&graph, input);
        }
        None => super::tracked::set_value_everywhere(key, label, stamp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_takes_24_bytes() {
        // Hashes only: the figure the docs give for an input in memory and in the graph file.
        assert_eq!(std::mem::size_of::<Input>(), 24);
    }
}
