//! Saves that send what changed: the journal's keys and their rows go to a store that takes
//! changes ([`Store::append`](crate::store::Store)), and a whole snapshot (a compaction) is
//! written only when the store asks for one, when `compact()` is called, or on a background
//! thread once the appended changes outgrow the snapshot.

use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, Weak};

use crate::Error;
use crate::background::Background;
use crate::cache::{CacheInner, on_maps};
use crate::hooks::Hooks;
use crate::store::Changes;

use super::ErasedCache;

/// What an attempt to save only the changes did.
pub(super) enum Appended<K> {
    /// The changes are stored; the save is done.
    Done,
    /// A whole snapshot is needed; these keys were taken from the journal and must be
    /// carried by it (or put back).
    Whole(Vec<K>),
}

/// A cache's background compaction: at most one at a time, on a `cacheman-compact` thread.
pub(crate) struct Compaction<K, V> {
    /// The cache itself, for the thread (set once, at registration).
    cache: OnceLock<Weak<CacheInner<K, V>>>,
    job: Background,
    /// The last compaction was outrun: saves appended so much while it ran that its new
    /// journal was due for compaction at once. The next one holds the save lock throughout
    /// (see `background_compaction.rs`).
    pub(super) outrun: AtomicBool,
}

impl<K, V> Default for Compaction<K, V> {
    fn default() -> Self {
        Compaction {
            cache: OnceLock::new(),
            job: Background::default(),
            outrun: AtomicBool::new(false),
        }
    }
}

impl<K, V> Compaction<K, V> {
    /// Lets compactions run in the background for `cache` (without, they run when asked).
    pub(crate) fn enable(&self, cache: Weak<CacheInner<K, V>>) {
        // Set once at registration: a second call changes nothing.
        let _ = self.cache.set(cache);
    }

    /// Waits for a background compaction in progress, if any.
    pub(crate) fn wait(&self) {
        self.job.wait();
    }

    /// Whether a background compaction is running.
    #[cfg(test)]
    pub(crate) fn running(&self) -> bool {
        self.job.running()
    }
}

impl<K, V> CacheInner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Saves only the changes since the last save, when the store takes them and nothing
    /// calls for a whole snapshot (hooks that see whole contents, a `clear()`, an empty cache
    /// that is not to be saved). The caller holds the save lock; `covered` is the count of
    /// changes made before this save began.
    pub(super) fn append_changes(
        &self,
        hooks: &Hooks<K, V>,
        covered: u64,
    ) -> Result<Appended<K>, Error> {
        let Some(store) = &self.store else {
            return Ok(Appended::Whole(Vec::new()));
        };
        let whole = hooks.need_contents_on_save()
            || !store.takes_changes()
            || self.cleared.load(Ordering::Acquire)
            || (!self.options.save_on_blank && on_maps!(self, s, now => s.len(now)) == 0);
        if whole {
            return Ok(Appended::Whole(Vec::new()));
        }
        let (rows, removed) = on_maps!(self, s, now => s.take_changes(now));
        let touched: Vec<K> = rows
            .iter()
            .map(|(k, _, _)| k.clone())
            .chain(removed.iter().cloned())
            .collect();
        let changes = Changes {
            rows,
            removed,
            epoch: self.epoch.load(Ordering::Acquire),
        };
        match store.append(changes) {
            Ok(Some(merged)) => {
                self.adopt(merged, &touched);
                self.settle(covered);
                self.autosync.saved(self.now_ms());
                self.counters.saved();
                if store.compaction_due() {
                    self.compact_in_background();
                }
                Ok(Appended::Done)
            }
            Ok(None) => Ok(Appended::Whole(touched)),
            Err(err) => {
                on_maps!(self, s, _now => s.restore_journal(touched));
                Err(err)
            }
        }
    }

    /// Starts a compaction on a `cacheman-compact` thread unless one is running; callers go
    /// on, and saves that start during it wait only for its first and last moments
    /// ([`CacheInner::compact_apart`]).
    fn compact_in_background(&self) {
        let Some(cache) = self.compaction.cache.get().cloned() else {
            return;
        };
        // Without a thread (a limit on threads) the journal keeps growing until `compact()`.
        self.compaction.job.start("cacheman-compact", move || {
            let Some(inner) = cache.upgrade() else {
                return;
            };
            if let Err(err) = inner.compact_apart() {
                log::warn!(
                    "cacheman: background compaction of cache `{}` failed: {err}; its \
                     journal is kept, and compaction is tried again after a later save",
                    inner.name
                );
            }
        });
    }
}

impl<K, V> crate::Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Writes the whole contents now as a new snapshot, which replaces the journal of changes
    /// that saves append (see the crate docs, "Files"), durably when it returns. Saves compact
    /// on their own, on a background thread, once the journal is larger than the snapshot
    /// (and than 1 MiB, [`CacheOptions::compact_from`](crate::CacheOptions::compact_from));
    /// call this to do it now, say before copying the cache file elsewhere. It is a whole
    /// save: it stores the changes not saved yet too, and holds the cache's save lock (and
    /// the file lock) until the file is in place, so saves that start meanwhile wait for it.
    /// The background compaction blocks no save, and stores nothing a save did not.
    /// For a store without a journal it is the same as [`Cache::save`](crate::Cache::save).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.insert(1, 1);
    /// cache.save().unwrap(); // the first save writes a snapshot
    /// cache.insert(2, 2);
    /// cache.save().unwrap(); // later ones append to `c.journal`
    /// assert!(dir.path().join("docs/c.journal").exists());
    /// cache.compact().unwrap();
    /// assert!(!dir.path().join("docs/c.journal").exists());
    /// ```
    pub fn compact(&self) -> Result<(), Error> {
        ErasedCache::compact(&*self.inner)
    }
}

#[cfg(test)]
pub(super) mod tests;
