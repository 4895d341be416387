//! The manifest, `<manager dir>/.manifest.json`: what a program knows of its manager that the
//! files alone do not say (the caches and the declared edges between them) and the counters of
//! each cache, added up over every process that saved. Tools (the `cacheman` command) read it
//! without the program; the library never reads it back except to add its counters to it.
//!
//! It is JSON so that people and scripts can read it too. It is written after a cache saves
//! (never on the hit path), by a rename under `.manifest.lock`, without fsync: it only
//! reports, so a power cut may lose its last update but never anything a cache holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::graph::EntryGraph;
use crate::stats::CacheStats;
use crate::store::files;

/// The version of the manifest's layout this build writes.
pub(crate) const MANIFEST_FORMAT: u32 = 1;

/// What a program recorded about one manager: its caches, how they depend on each other, and
/// their counters. Read with [`inspect::Manager::manifest`](crate::inspect::Manager).
///
/// ```
/// let manifest = cacheman::inspect::Manifest::default();
/// assert!(manifest.caches.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// The layout version (1).
    pub format: u32,
    /// The manager's name.
    pub manager: String,
    /// Every cache a program registered or declared, by name.
    pub caches: BTreeMap<String, ManifestCache>,
}

/// One cache in a [`Manifest`].
///
/// ```
/// let cache = cacheman::inspect::ManifestCache::default();
/// assert!(cache.dependents.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManifestCache {
    /// Whether the cache is saved to a file (a `persistent = false` cache has none).
    pub persistent: bool,
    /// The caches declared to depend on this one (`depends_on`, `register_dependent_cache`),
    /// directly.
    pub dependents: Vec<String>,
    /// The cache's counters, summed over every process that saved it (entries: as the last
    /// process to save saw them).
    pub stats: CacheStats,
    /// When `stats` was last written, in Unix milliseconds.
    pub stats_updated_ms: u64,
}

/// `on_disk + (now - before)`, counter by counter: what another process recorded plus what
/// this one counted since it last wrote; `entries` is `now`'s.
fn plus_since(on_disk: CacheStats, before: CacheStats, now: CacheStats) -> CacheStats {
    let add = |on_disk: u64, was: u64, is: u64| on_disk.saturating_add(is.saturating_sub(was));
    CacheStats {
        hits: add(on_disk.hits, before.hits, now.hits),
        misses: add(on_disk.misses, before.misses, now.misses),
        inserts: add(on_disk.inserts, before.inserts, now.inserts),
        evictions: add(on_disk.evictions, before.evictions, now.evictions),
        loads: add(on_disk.loads, before.loads, now.loads),
        saves: add(on_disk.saves, before.saves, now.saves),
        store_errors: add(on_disk.store_errors, before.store_errors, now.store_errors),
        entries: now.entries,
    }
}

/// Reads a manifest file. `Ok(None)`: there is none.
pub(crate) fn read(path: &Path) -> Result<Option<Manifest>, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.to_string()),
    };
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(format!(
            "manifest format {} (this build reads {MANIFEST_FORMAT})",
            manifest.format
        ));
    }
    Ok(Some(manifest))
}

/// What this process last wrote of each cache's counters, so that the next write adds only
/// what happened since.
#[derive(Default)]
pub(crate) struct Written {
    stats: BTreeMap<String, CacheStats>,
}

/// The manifest's side of the graph: writing what this process knows.
impl EntryGraph {
    pub(crate) fn manifest_path(&self) -> PathBuf {
        self.path.with_file_name(super::MANIFEST_FILE)
    }

    /// Removes what a write of the manifest killed half-way left behind (when the graph loads,
    /// so that leftovers never outlive the next open).
    pub(crate) fn clean_manifest_temporaries(&self) {
        let path = self.manifest_path();
        if path.parent().is_some_and(Path::is_dir)
            && let Ok(lock) = files::lock_beside(&path)
        {
            files::remove_orphan_temps(&path, &lock);
        }
    }

    /// Writes the manifest: the caches this process knows, the declared edges, and each linked
    /// cache's counters added to what other processes recorded. `now_ms` stamps the counters.
    /// A failure is logged, never returned: the save it follows has succeeded.
    pub(crate) fn write_manifest(&self, now_ms: u64) {
        if let Err(err) = self.try_write_manifest(now_ms) {
            log::warn!(
                "cacheman: could not write the manifest {} of manager `{}` ({err}); the \
                 `cacheman` tool shows less of it until the next save",
                self.manifest_path().display(),
                self.manager
            );
        }
    }

    fn try_write_manifest(&self, now_ms: u64) -> std::io::Result<()> {
        let path = self.manifest_path();
        if !path.parent().is_some_and(Path::is_dir) {
            return Ok(()); // nothing saved yet: the directory is made by a save
        }
        let lock = files::lock_beside(&path)?;
        files::remove_orphan_temps(&path, &lock);
        let mut manifest = match read(&path) {
            Ok(found) => found.unwrap_or_default(),
            Err(reason) => {
                log::warn!(
                    "cacheman: the manifest {} of manager `{}` is unreadable ({reason}); \
                     writing it anew",
                    path.display(),
                    self.manager
                );
                Manifest::default()
            }
        };
        manifest.format = MANIFEST_FORMAT;
        manifest.manager = self.manager.clone();
        for (name, persistent) in self.known_caches() {
            let entry = manifest.caches.entry(name).or_default();
            entry.persistent = persistent;
        }
        for (name, dependents) in self.declared_edges() {
            manifest.caches.entry(name).or_default().dependents = dependents;
        }
        let mut written = self
            .manifest_written
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (name, now) in self.linked_stats() {
            let before = written.stats.get(&name).copied().unwrap_or_default();
            let entry = manifest.caches.entry(name.clone()).or_default();
            entry.stats = plus_since(entry.stats, before, now);
            entry.stats_updated_ms = now_ms;
            written.stats.insert(name, now);
        }
        let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
        files::replace_unsynced(&path, &[&json, b"\n"])
    }
}

/// Serializes writers of the manifest within a process (the lock file does between processes).
pub(crate) type ManifestWritten = Mutex<Written>;
