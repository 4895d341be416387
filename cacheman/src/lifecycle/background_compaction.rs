//! The background compaction, which blocks no save: the cache's save lock (and the store's
//! lock) are held only at its start and its end, each for a moment; the copy of the entries
//! and the writing of the new snapshot happen between, while this process saves and other
//! processes append as usual (docs/ARCHITECTURE.md, "The journal"; the store's side is in
//! `store/file_store/compaction.rs`).
//!
//! It saves nothing: a change it copies that no save has stored stays pending, and the new
//! journal starts with the stored rows of every such key, so that the files hold exactly what
//! saves stored, as before the compaction.
//!
//! Saves that append faster than such a compaction ends would outrun it: the frames they
//! append meanwhile are carried into the new journal, which can then be due for compaction
//! at once, and the next compaction reads a larger journal and takes longer (a test whose
//! threads churn 100,000 keys between back-to-back saves grew the journal to 100 MB beside a
//! 1 MB snapshot). So when the last compaction was outrun (its new journal was due for
//! compaction at once), or the journal has grown to twice what makes a compaction due
//! (`Store::compaction_overdue`), the compaction holds this process's save lock from its
//! start to its end: its saves wait, as they waited for every compaction before, and the new journal
//! carries only other processes' frames. Other processes' appends still go on.

use std::hash::Hash;
use std::sync::atomic::Ordering;

use crate::Error;
use crate::cache::{CacheInner, on_maps};

/// Keys changed and not saved beyond which (and beyond the entries held) a background
/// compaction is a whole save instead: looking up the stored rows of every changed key (the
/// snapshot's keys and the journal's frames read again) costs more than storing them. A
/// workload that churns that many keys between saves has its changes saved, as by any save.
const WHOLE_FROM_CHANGED: usize = 10_000;

impl<K, V> CacheInner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Compacts the store's journal in three phases (see the module's documentation). Does
    /// nothing when the store compacts only by whole saves, when a `clear()` waits for a
    /// whole save, or when something replaced the files or memory meanwhile (a load, an
    /// invalidation, another process's compaction): the journal then stays, and a later save
    /// starts another compaction if one is still due.
    pub(crate) fn compact_apart(&self) -> Result<(), Error> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        // Phase 1, under both locks: memory takes in what others appended since our last
        // sync, and the store notes where the journal ends. An overdue compaction keeps the
        // save lock to its end.
        let mut held = Some(self.lock_saves());
        let (compacting, mut encoder, loads) = {
            if self.cleared.load(Ordering::Acquire) {
                return Ok(());
            }
            let changed = on_maps!(self, s, _now => s.changed_len());
            let entries = on_maps!(self, s, now => s.len(now));
            if changed > entries.max(WHOLE_FROM_CHANGED) {
                // Churn: the stored rows of that many keys would cost more than the whole
                // save compactions were before (which stores them).
                drop(held);
                return self.compact_now();
            }
            let epoch = self.epoch.load(Ordering::Acquire);
            let Some(begun) = store.begin_compaction(epoch)? else {
                return Ok(());
            };
            self.adopt(begun.merged, &[]);
            let Some((compacting, encoder)) = begun.compaction else {
                return Ok(());
            };
            (compacting, encoder, self.counters.loads())
        };
        if !self.compaction.outrun.load(Ordering::Acquire) && !store.compaction_overdue() {
            held = None;
        }
        // Phase 2, no lock: the copy, written as it goes to a temporary file.
        on_maps!(self, s, now => s.copy_into(now, &mut *encoder))?;
        let mut rows = encoder.finish()?;
        // Keys whose copied row may be unsaved: changed since the last save, or taken by a
        // save in flight during the copy (one that failed puts them back before it lets go
        // of the save lock; one that succeeded appended a frame, which the new journal
        // carries). The files' rows for them go in front of the carried frames.
        let pending = {
            let _saving = held.is_none().then(|| self.lock_saves());
            on_maps!(self, s, _now => s.changed_keys())
        };
        let Some(pending) = pending else {
            return Ok(());
        };
        let Some(saved) = store.saved_rows(&compacting, pending, &mut rows)? else {
            return Ok(());
        };
        // Phase 3, under both locks: the new snapshot and journal go in place.
        let _saving = held.unwrap_or_else(|| self.lock_saves());
        if self.cleared.load(Ordering::Acquire) || self.counters.loads() != loads {
            // Memory was cleared or replaced: the copy may lack stored rows.
            return Ok(());
        }
        if let Some(merged) = store.finish_compaction(compacting, rows, saved)? {
            self.adopt(merged, &[]);
            let outrun = store.compaction_due();
            self.compaction.outrun.store(outrun, Ordering::Release);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
