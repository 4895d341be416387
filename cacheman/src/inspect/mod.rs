//! Looking at caches from outside the program that owns them: the managers under a base
//! directory, their cache files (headers, sizes, locks, leftovers of crashed saves), what the
//! program recorded in its manifest (caches, declared edges, counters) and its per-entry
//! dependency graph, counted. This is what the `cacheman` command-line tool (`cacheman-cli`)
//! shows; everything here reads files and never needs the caches' key and value types.
//!
//! [`clear`] and [`invalidate`] change caches safely while programs that use them run: under
//! the same lock files and invalidation epochs as the library itself, so that a running
//! program never writes the cleared entries back.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! let manager = cacheman::CacheManager::new("app", dir.path());
//! let cache = manager.register_cache::<u32, String>("names").unwrap();
//! cache.insert(1, "one".into());
//! cache.save().unwrap();
//!
//! let managers = cacheman::inspect::scan(dir.path()).unwrap();
//! assert_eq!(managers[0].name, "app");
//! let file = &managers[0].caches[0];
//! assert_eq!(file.name, "names");
//! assert_eq!(file.header.as_ref().unwrap().entries, 1);
//! ```

mod manage;
mod typed;
mod verify;

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use crate::deps::{GraphSummary, Manifest, ManifestCache, RecordedEdge};
pub use manage::{clear, invalidate};
pub use typed::TypedView;
pub use verify::{Verification, verify};

use crate::store::files;
use crate::store::format::{HEADER_LEN, Header, Rejection};

/// One manager's directory under a base directory, as found on disk.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Manager {
    /// The directory's name, which is the manager's name.
    pub name: String,
    /// The directory.
    pub directory: PathBuf,
    /// Its cache files, and the caches its manifest names that have no file, in name order.
    pub caches: Vec<CacheFile>,
    /// What the program recorded (`.manifest.json`), if it wrote one.
    pub manifest: Option<Manifest>,
    /// The per-entry dependency graph (`.graph.deps`, with the saves in its journal
    /// `.graph.journal` replayed), counted, if there is one.
    pub graph: Option<GraphSummary>,
    /// What could not be read, each with the file and the reason.
    pub problems: Vec<String>,
}

/// One cache of a manager directory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheFile {
    /// The cache's name.
    pub name: String,
    /// Its file (which may not exist: see `exists`).
    pub path: PathBuf,
    /// Whether the file exists.
    pub exists: bool,
    /// The file's size in bytes (0 without a file).
    pub size_bytes: u64,
    /// The size of its journal (`<name>.journal`: the saves appended since the snapshot), 0
    /// without one.
    pub journal_bytes: u64,
    /// When the file was last written.
    pub modified: Option<SystemTime>,
    /// What its header says, when it could be read and checked.
    pub header: Option<FileHeader>,
    /// Why the header could not be used, if it could not.
    pub problem: Option<String>,
    /// Whether a process holds the cache's lock file now (a save in progress).
    pub save_in_progress: bool,
    /// Temporary files of crashed saves beside the file (never those of a save in progress).
    pub stale_temporaries: Vec<PathBuf>,
}

impl CacheFile {
    /// Whether its journal holds saves appended since the snapshot (so the snapshot's entry
    /// count is not the whole story; [`verify`] counts them).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let file = cacheman::inspect::read_cache_file(&dir.path().join("c.cache"), "c");
    /// assert!(!file.journal_has_frames());
    /// ```
    pub fn journal_has_frames(&self) -> bool {
        self.journal_bytes > crate::store::journal::HEADER_LEN
    }
}

/// What a cache file's header says (checked: magic, header checksum, format version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileHeader {
    /// The file format version.
    pub format_version: u16,
    /// The codec's name (`postcard`, `json`, `csv`), or `unknown` for an id this build lacks.
    pub codec: &'static str,
    /// Entries the file holds.
    pub entries: u64,
    /// The invalidation epoch the file was written at.
    pub epoch: u64,
    /// Fingerprint of the key and value types.
    pub type_fingerprint: u64,
    /// Fingerprint of the cached function (or the `fn_fingerprint` option).
    pub fn_fingerprint: u64,
    /// Bytes of payload after the header.
    pub payload_bytes: u64,
}

impl FileHeader {
    /// Whether the file is an invalidation marker: no entries, written to record an epoch.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("app", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.insert(1, 1);
    /// cache.save().unwrap();
    /// cache.invalidate().unwrap();
    /// let file = &cacheman::inspect::scan(dir.path()).unwrap()[0].caches[0];
    /// assert!(file.header.unwrap().is_invalidation_marker());
    /// ```
    pub fn is_invalidation_marker(&self) -> bool {
        self.entries == 0 && self.payload_bytes == 0
    }

    fn of(header: &Header) -> Self {
        FileHeader {
            format_version: header.version,
            codec: codec_name(header.codec),
            entries: header.entries,
            epoch: header.epoch,
            type_fingerprint: header.type_fingerprint,
            fn_fingerprint: header.fn_fingerprint,
            payload_bytes: header.payload_len,
        }
    }
}

fn codec_name(id: u8) -> &'static str {
    [
        crate::Codec::Postcard,
        crate::Codec::Json,
        crate::Codec::Csv,
    ]
    .into_iter()
    .find(|c| c.id() == id)
    .map_or("unknown", |c| c.name())
}

/// Every manager directory under `base` (the library's default is
/// [`default_base_dir`](crate::default_base_dir)), in name order. A directory counts as a
/// manager's when it holds a cache file, a manifest or a graph file. A missing `base` holds
/// none.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// assert!(cacheman::inspect::scan(dir.path()).unwrap().is_empty());
/// ```
pub fn scan(base: &Path) -> io::Result<Vec<Manager>> {
    let entries = match fs::read_dir(base) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut managers = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let manager = read_manager(&entry.path());
        let recognised = !manager.caches.is_empty()
            || manager.manifest.is_some()
            || manager.graph.is_some()
            || !manager.problems.is_empty();
        if recognised {
            managers.push(manager);
        }
    }
    managers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(managers)
}

/// Reads one manager's directory (which need not exist: it then holds nothing).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let manager = cacheman::inspect::read_manager(&dir.path().join("app"));
/// assert_eq!(manager.name, "app");
/// assert!(manager.caches.is_empty());
/// ```
pub fn read_manager(directory: &Path) -> Manager {
    let name = directory
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut manager = Manager {
        name,
        directory: directory.to_owned(),
        caches: Vec::new(),
        manifest: None,
        graph: None,
        problems: Vec::new(),
    };
    let manifest_path = directory.join(crate::deps::MANIFEST_FILE);
    match crate::deps::read_manifest(&manifest_path) {
        Ok(found) => manager.manifest = found,
        Err(reason) => manager
            .problems
            .push(format!("{}: {reason}", manifest_path.display())),
    }
    let graph_path = directory.join(crate::deps::GRAPH_FILE);
    match crate::deps::summarize_graph(&graph_path) {
        Ok(found) => manager.graph = found,
        Err(reason) => manager.problems.push(format!(
            "{}: the dependency graph {reason}",
            graph_path.display()
        )),
    }
    let mut names: Vec<String> = Vec::new();
    if let Ok(entries) = fs::read_dir(directory) {
        let suffix = format!(".{}", files::CACHE_EXTENSION);
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                manager.problems.push(format!(
                    "{}: a file name that is not UTF-8 (not a cache of cacheman's; left alone)",
                    entry.path().display()
                ));
                continue;
            };
            if let Some(cache) = file_name.strip_suffix(&suffix)
                && files::check_name("cache", cache).is_ok()
            {
                names.push(cache.to_owned());
            }
        }
    }
    if let Some(manifest) = &manager.manifest {
        for (cache, recorded) in &manifest.caches {
            if recorded.persistent && !names.contains(cache) {
                names.push(cache.clone());
            }
        }
    }
    names.sort();
    names.dedup();
    manager.caches = names
        .iter()
        .map(|cache| read_cache_file(&files::cache_path(directory, cache), cache))
        .collect();
    manager
}

/// What the file of cache `name` at `path` is: its size and header (the payload is not read:
/// see [`verify`]), whether a save holds its lock, and leftovers of crashed saves.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let file = cacheman::inspect::read_cache_file(&dir.path().join("c.cache"), "c");
/// assert!(!file.exists);
/// ```
pub fn read_cache_file(path: &Path, name: &str) -> CacheFile {
    let mut file = CacheFile {
        name: name.to_owned(),
        path: path.to_owned(),
        exists: false,
        size_bytes: 0,
        journal_bytes: 0,
        modified: None,
        header: None,
        problem: None,
        save_in_progress: lock_held(path),
        stale_temporaries: Vec::new(),
    };
    if !file.save_in_progress {
        file.stale_temporaries = temporaries(path);
    }
    let journal = crate::store::journal::path_beside(path);
    if let Ok(meta) = fs::metadata(&journal) {
        file.journal_bytes = meta.len();
        // An append is a save too.
        file.modified = meta.modified().ok();
    }
    match fs::File::open(path) {
        Ok(mut handle) => {
            file.exists = true;
            if let Ok(meta) = handle.metadata() {
                file.size_bytes = meta.len();
                file.modified = file.modified.max(meta.modified().ok());
            }
            let mut head = Vec::with_capacity(HEADER_LEN);
            match (&mut handle).take(HEADER_LEN as u64).read_to_end(&mut head) {
                Ok(_) => match Header::decode_head(&head) {
                    Ok((header, header_len)) => {
                        let expected = header_len as u64 + header.payload_len;
                        if expected != file.size_bytes {
                            file.problem = Some(format!(
                                "the header claims {expected} bytes but the file holds {}",
                                file.size_bytes
                            ));
                        }
                        file.header = Some(FileHeader::of(&header));
                    }
                    Err(Rejection::Corrupt(reason) | Rejection::Incompatible(reason)) => {
                        file.problem = Some(reason);
                    }
                },
                Err(err) => file.problem = Some(format!("it could not be read: {err}")),
            }
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => file.problem = Some(format!("it could not be opened: {err}")),
    }
    file
}

/// Whether another process holds the lock file beside `path` now.
fn lock_held(path: &Path) -> bool {
    let Ok(lock) = fs::File::open(path.with_extension("lock")) else {
        return false;
    };
    match lock.try_lock() {
        Ok(()) => false,
        Err(fs::TryLockError::WouldBlock) => true,
        Err(fs::TryLockError::Error(_)) => false,
    }
}

/// Temporary files of saves beside `path`.
fn temporaries(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), prefix) = (path.parent(), files::temp_prefix(path)) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        // One its writer still locks is being written (a background compaction's snapshot).
        .filter(|path| files::is_orphan(path))
        .collect();
    found.sort();
    found
}
