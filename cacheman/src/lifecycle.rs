//! A cache's life beyond its map: saving, loading, building, invalidating; the type-erased
//! face the manager keeps of it ([`ErasedCache`]) is in `lifecycle/erased.rs`.

use crate::shards::RowMeta;
use std::hash::Hash;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use crate::Error;
use crate::cache::{CacheInner, on_maps};
use crate::hooks::{Contents, Hooks};
use crate::store::{Journal, Merged, Outgoing, Rows};

mod append;
mod background_compaction;
mod erased;

use append::Appended;
pub(crate) use append::Compaction;
pub(crate) use erased::ErasedCache;

/// Contents that came from somewhere: rows with their stamps, and the file's epoch.
struct Source<K, V> {
    rows: Vec<(K, V, RowMeta)>,
    epoch: Option<u64>,
}

fn rows_of<K, V>(contents: Contents<K, V>) -> Vec<(K, V, RowMeta)> {
    contents
        .into_iter()
        .map(|(k, v)| (k, v, RowMeta::default()))
        .collect()
}

impl<K, V> CacheInner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn lock_saves(&self) -> MutexGuard<'_, ()> {
        // The guarded data is `()`: poisoning says nothing about any state.
        self.save_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hooks(&self) -> Hooks<K, V> {
        self.hooks.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn hook_error(&self, hook: &'static str, source: crate::HookError) -> Error {
        Error::Hook {
            cache: self.name.clone(),
            hook,
            source,
        }
    }

    /// Saves what changed since the last save: appended to the store's journal when it takes
    /// changes, else (or when the store asks for one) a whole snapshot (see
    /// [`CacheInner::compact_now`]).
    pub(crate) fn save_now(&self) -> Result<(), Error> {
        self.save_as(false)
    }

    /// Saves a whole snapshot (for a store with a journal, a compaction: the snapshot
    /// replaces the journal). The snapshot is taken shard by shard under short locks; encoding
    /// and writing happen outside every map lock. With the default file store, the save merges
    /// with what other processes saved since this one last read or wrote the files.
    pub(crate) fn compact_now(&self) -> Result<(), Error> {
        self.save_as(true)
    }

    fn save_as(&self, whole: bool) -> Result<(), Error> {
        let saved = self.write_out(whole);
        // What tools read without the program: the caches, their edges, their counters.
        if saved.is_ok()
            && let Some(link) = self.deps.get()
        {
            link.graph.write_manifest(self.now_ms());
        }
        saved
    }

    /// [`CacheInner::save_as`] but for the manifest.
    fn write_out(&self, whole: bool) -> Result<(), Error> {
        let hooks = self.hooks();
        if (self.store.is_none() || self.shared().is_some()) && hooks.saver.is_none() {
            // Non-persistent, or on a shared store (which took every change as it came),
            // without a custom saver: nothing to write, nothing is pending.
            self.set_pending(0);
            self.autosync.saved(self.now_ms());
            return Ok(());
        }
        let _saving = self.lock_saves();
        // The graph first: a crash between the two writes then leaves nodes for entries the
        // cache file does not have yet (harmless), never entries without their inputs. Its
        // merge also takes off what other processes invalidated before the snapshot.
        if let Some(link) = self.deps.get() {
            // The file is about to hold what memory holds: entries held by neither are
            // forgotten first (by an append, those among its changes: see `prune_changed`).
            if whole {
                self.prune_recorded();
            } else {
                self.prune_changed();
            }
            link.graph.save()?;
        }
        let covered = self.counters.changes_made();
        let carried = match whole {
            true => Vec::new(),
            false => match self.append_changes(&hooks, covered)? {
                Appended::Done => return Ok(()),
                Appended::Whole(carried) => carried,
            },
        };
        let (rows, mut touched) = match self.snapshot_for_save(&hooks) {
            Ok(snapshot) => snapshot,
            Err(err) => {
                on_maps!(self, s, _now => s.restore_journal(carried));
                return Err(err);
            }
        };
        touched.extend(carried);
        let cleared = self.cleared.swap(false, Ordering::AcqRel);
        let restore = |touched: Vec<K>| {
            on_maps!(self, s, _now => s.restore_journal(touched));
            if cleared {
                self.cleared.store(true, Ordering::Release);
            }
        };
        if rows.count() == 0 && !self.options.save_on_blank {
            // Nothing written: the file is as out of step with memory as before.
            restore(touched);
            self.settle(covered);
            self.autosync.saved(self.now_ms());
            return Ok(());
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let saved = match (rows, &self.store) {
            // Hooks that need the contents always get cloned rows (no encoder above).
            (Rows::Decoded(rows), _) if hooks.need_contents_on_save() => {
                self.save_through_hooks(&hooks, rows, epoch)
            }
            (rows, Some(store)) => {
                let journal = Journal {
                    touched: touched.clone(),
                    cleared,
                    dropped_before: on_maps!(self, s, now => s.dropped_before(now)),
                };
                store.save(Outgoing {
                    rows,
                    epoch,
                    journal: Some(journal),
                })
            }
            (_, None) => Ok(Merged::Written),
        };
        match saved {
            Ok(merged) => self.adopt(merged, &touched),
            Err(err) => {
                restore(touched);
                return Err(err);
            }
        }
        // Changes made while we were writing were not in the snapshot: they stay pending.
        self.settle(covered);
        self.autosync.saved(self.now_ms());
        self.counters.saved();
        Ok(())
    }

    /// The entries to save and the journaled keys they cover. The store encodes the entries as
    /// they are copied when it can (no clone of each value); hooks that need the contents get
    /// cloned rows. An encoding error puts the journal back.
    fn snapshot_for_save(&self, hooks: &Hooks<K, V>) -> Result<(Rows<K, V>, Vec<K>), Error> {
        let encoder = match (&self.store, hooks.need_contents_on_save()) {
            (Some(store), false) => store.encoder()?,
            _ => None,
        };
        let Some(mut encoder) = encoder else {
            let mut rows = Vec::with_capacity(on_maps!(self, s, now => s.len(now)));
            let (touched, copied) =
                on_maps!(self, s, now => s.snapshot_with_journal(now, &mut rows));
            crate::shards::infallible(copied);
            return Ok((Rows::Decoded(rows), touched));
        };
        let (touched, copied) =
            on_maps!(self, s, now => s.snapshot_with_journal(now, &mut *encoder));
        match copied.and_then(|()| encoder.finish()) {
            Ok(rows) => Ok((rows, touched)),
            Err(err) => {
                on_maps!(self, s, _now => s.restore_journal(touched));
                Err(err)
            }
        }
    }

    /// The save path of caches with a custom saver or a pre-processor: they see whole
    /// contents, so there is no merge with other processes.
    fn save_through_hooks(
        &self,
        hooks: &Hooks<K, V>,
        rows: Vec<(K, V, RowMeta)>,
        epoch: u64,
    ) -> Result<Merged<K, V>, Error> {
        let mut contents: Contents<K, V> = rows.into_iter().map(|(k, v, _)| (k, v)).collect();
        if let Some(pre) = &hooks.pre_processor {
            contents = pre(contents);
        }
        match (&hooks.saver, &self.store) {
            (Some(saver), _) => {
                saver(&self.name, &contents).map_err(|e| self.hook_error("saver", e))?;
                Ok(Merged::Written)
            }
            (None, Some(store)) => store.save(Outgoing {
                rows: Rows::Decoded(rows_of(contents)),
                epoch,
                journal: None,
            }),
            (None, None) => Ok(Merged::Written),
        }
    }

    /// Takes in what a merging save found that other processes wrote; `touched` are the keys
    /// the save carried.
    fn adopt(&self, merged: Merged<K, V>, touched: &[K]) {
        match merged {
            Merged::Written => {}
            Merged::Adopt { rows, gone } => self.put_checked(
                rows,
                |rows| on_maps!(self, s, now => s.adopt(rows, gone, now)),
                || {},
            ),
            Merged::Resync { rows } => self.put_checked(
                rows,
                |rows| on_maps!(self, s, now => s.resync(rows, touched, now)),
                || {},
            ),
            Merged::Invalidated { epoch, rows } => {
                // Another process invalidated this cache: drop all we held from before, even
                // changes made during this save, which may derive from the invalidated data.
                self.epoch.fetch_max(epoch, Ordering::AcqRel);
                self.replace_contents(rows);
            }
        }
    }

    /// Reads the stored contents through the loader, validator and post-processor.
    /// `Ok(None)`: nothing valid is stored.
    fn read_source(&self, hooks: &Hooks<K, V>) -> Result<Option<Source<K, V>>, Error> {
        let source = if let Some(loader) = &hooks.loader {
            (loader)(&self.name)
                .map_err(|e| self.hook_error("loader", e))?
                .map(|contents| Source {
                    rows: rows_of(contents),
                    epoch: None,
                })
        } else if let Some(store) = &self.store {
            store.load()?.map(|loaded| Source {
                rows: loaded.rows,
                epoch: Some(loaded.epoch),
            })
        } else {
            None
        };
        let Some(mut source) = source else {
            return Ok(None);
        };
        if hooks.validator.is_none() && hooks.post_processor.is_none() {
            return Ok(Some(source));
        }
        let mut contents: Contents<K, V> =
            source.rows.into_iter().map(|(k, v, _)| (k, v)).collect();
        if let Some(validator) = &hooks.validator
            && !validator(&contents)
        {
            log::warn!(
                "cacheman: the validator of cache `{}` rejected its stored contents; \
                 starting from the builder or empty",
                self.name
            );
            return Ok(None);
        }
        if let Some(post) = &hooks.post_processor {
            contents = post(contents);
        }
        source.rows = rows_of(contents);
        Ok(Some(source))
    }

    /// The builder's contents (empty without a builder), through the post-processor, which
    /// runs after every load or build, the default empty one included.
    fn build(&self, hooks: &Hooks<K, V>) -> Result<Vec<(K, V, RowMeta)>, Error> {
        let mut contents = match &hooks.builder {
            Some(builder) => builder(&self.name).map_err(|e| self.hook_error("builder", e))?,
            None => Contents::default(),
        };
        if let Some(post) = &hooks.post_processor {
            contents = post(contents);
        }
        Ok(rows_of(contents))
    }

    /// Replaces memory with `rows`, leaving out (or setting aside) those the dependency
    /// graph says are stale.
    fn replace_contents(&self, rows: Vec<(K, V, RowMeta)>) {
        self.put_checked(
            rows,
            |rows| on_maps!(self, s, now => s.replace_all(rows, now)),
            || {},
        );
    }

    /// Puts rows that came from storage into memory with `put` (which returns how many entries
    /// it evicted), then takes off those the dependency graph says are stale or must be
    /// checked first. `settle` runs in between: the take-offs after it count as changes, so
    /// the next save removes those rows from the file.
    fn put_checked(
        &self,
        rows: Vec<(K, V, RowMeta)>,
        put: impl FnOnce(Vec<(K, V, RowMeta)>) -> usize,
        settle: impl FnOnce(),
    ) {
        let (dirty, suspect) = self.check_rows(rows.iter().map(|(k, v, _)| (k, v)));
        self.counters.evicted(put(rows));
        settle();
        if !dirty.is_empty() || !suspect.is_empty() {
            crate::deps::Holder::take_off(self, &dirty, &suspect);
        }
    }

    /// Loads what is stored, or builds. With `strict`, a storage or hook error is returned and
    /// memory is left as it was; without, it is logged and the cache starts from the builder or
    /// empty (the unreadable file stays until a save replaces it).
    pub(crate) fn load_or_build(&self, strict: bool) -> Result<(), Error> {
        let hooks = self.hooks();
        let _loading = self.lock_saves();
        let source = match self.read_source(&hooks) {
            Ok(source) => source,
            Err(err) if !strict => {
                log::warn!("cacheman: {err}");
                None
            }
            Err(err) => return Err(err),
        };
        match source {
            Some(source) => {
                if let Some(epoch) = source.epoch {
                    self.epoch.fetch_max(epoch, Ordering::AcqRel);
                }
                // Memory then equals storage, less what the graph says is stale (which the
                // next save removes from the file).
                self.put_checked(
                    source.rows,
                    |rows| on_maps!(self, s, now => s.replace_all(rows, now)),
                    || {
                        self.cleared.store(false, Ordering::Release);
                        self.set_pending(0);
                    },
                );
            }
            None => {
                let rows = match self.build(&hooks) {
                    Ok(rows) => rows,
                    Err(err) if !strict => {
                        log::warn!("cacheman: {err}");
                        Vec::new()
                    }
                    Err(err) => return Err(err),
                };
                let built = rows.len() as u64;
                self.replace_contents(rows);
                // Built contents are not stored yet: count them so that they get saved (whole:
                // they are not in the shards' journal).
                if built > 0 {
                    self.cleared.store(true, Ordering::Release);
                }
                self.set_pending(built);
            }
        }
        self.counters.loaded();
        Ok(())
    }

    fn delete_stored(&self, hooks: &Hooks<K, V>) -> Result<(), Error> {
        match (&hooks.deleter, &self.store) {
            (Some(deleter), _) => deleter(&self.name).map_err(|e| self.hook_error("deleter", e)),
            (None, Some(store)) => store.delete(),
            (None, None) => Ok(()),
        }
    }
}

impl<K, V> crate::Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Writes the contents now (atomically; see the crate docs). A non-persistent cache without
    /// a custom saver writes nothing and returns `Ok`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.insert(1, 1);
    /// cache.save().unwrap();
    /// assert_eq!(cache.stats().saves, 1);
    /// ```
    pub fn save(&self) -> Result<(), Error> {
        self.inner.save_now()
    }

    /// Clears this cache and every cache that depends on it, in memory and on disk (see
    /// [`CacheManager::invalidate_cache`](crate::CacheManager::invalidate_cache)).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.insert(1, 1);
    /// cache.save().unwrap();
    /// cache.invalidate().unwrap();
    /// assert!(cache.is_empty());
    /// cache.reload().unwrap(); // the file was emptied too
    /// assert!(cache.is_empty());
    /// ```
    pub fn invalidate(&self) -> Result<(), Error> {
        let inner = &*self.inner;
        match inner.deps.get() {
            // Only if the manager still knows this very cache under its name.
            Some(link) if link.graph.links(&inner.name, inner) => {
                link.graph
                    .invalidate_caches(&inner.name, true, inner.now_ms())
            }
            _ => inner.invalidate_local(),
        }
    }

    /// Replaces the contents with what is stored (see
    /// [`CacheManager::reload_cache`](crate::CacheManager::reload_cache)).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.insert(1, 1);
    /// cache.reload().unwrap(); // nothing was saved
    /// assert!(cache.is_empty());
    /// ```
    pub fn reload(&self) -> Result<(), Error> {
        self.inner.load_or_build(true)
    }

    /// Changes (inserts, removals, clears, invalidations) not yet saved.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("c").unwrap();
    /// cache.insert(1, 1);
    /// assert_eq!(cache.pending_changes(), 1);
    /// cache.save().unwrap();
    /// assert_eq!(cache.pending_changes(), 0);
    /// ```
    pub fn pending_changes(&self) -> u64 {
        self.inner.pending_changes()
    }
}

#[cfg(test)]
mod tests;
