//! The type-erased face of a cache ([`ErasedCache`]): what the manager keeps of it without
//! its key and value types.

use std::any::Any;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::Error;
use crate::cache::{CacheInner, on_maps};

/// What the manager needs of a cache without knowing its key and value types.
pub(crate) trait ErasedCache: crate::deps::Holder + Send + Sync + 'static {
    fn name(&self) -> &str;
    fn key_type(&self) -> &'static str;
    fn value_type(&self) -> &'static str;
    /// For the downcast back to the typed cache; a wrong `K`/`V` is `TypeMismatch`.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn save(&self) -> Result<(), Error>;
    /// Saves the whole contents as a new snapshot (a compaction of the store's journal).
    fn compact(&self) -> Result<(), Error>;
    /// Clears memory and storage and bumps the invalidation epoch.
    fn invalidate_local(&self) -> Result<(), Error>;
    /// Removes the stored contents, keeping memory as it is.
    fn delete_saved(&self) -> Result<(), Error>;
    /// Replaces memory with what storage holds (or the builder makes).
    fn reload(&self) -> Result<(), Error>;
    /// Invalidates, fills from the builder, and saves what it built.
    fn rebuild(&self) -> Result<(), Error>;
    fn changes_since_save(&self) -> u64;
    fn is_persistent(&self) -> bool;
    /// Whether a save writes anything: a file, or a custom saver.
    fn writes_somewhere(&self) -> bool;
    fn save_state(&self) -> &crate::autosync::SaveState;
    /// The cache's clock, in Unix milliseconds.
    fn now_ms(&self) -> u64;
    fn on_manual_clock(&self) -> bool;
}

impl<K, V> ErasedCache for CacheInner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn key_type(&self) -> &'static str {
        std::any::type_name::<K>()
    }

    fn value_type(&self) -> &'static str {
        std::any::type_name::<V>()
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn save(&self) -> Result<(), Error> {
        self.save_now()
    }

    fn compact(&self) -> Result<(), Error> {
        // One whole snapshot at a time: one started in the background finishes first.
        self.compaction.wait();
        self.compact_now()
    }

    fn invalidate_local(&self) -> Result<(), Error> {
        let hooks = self.hooks();
        let _saving = self.lock_saves();
        // Epochs follow the clock, so an invalidation written later always outranks what any
        // process held before it, even one that never read the file.
        let epoch = (self.epoch.load(Ordering::Acquire) + 1).max(self.now_ms());
        let dropped = {
            // A computation checks the epoch and stores under the read lock: none can store
            // a value from before the new epoch once the map is cleared.
            let _landing = self.landing_exclusive();
            self.epoch.fetch_max(epoch, Ordering::AcqRel);
            self.drop_all_parked();
            on_maps!(self, s, _now => s.clear())
        };
        self.cleared.store(false, Ordering::Release);
        self.note_changes(dropped.max(1) as u64);
        // Every recorded entry of this cache, and what read them, in every cache.
        if let Some(link) = self.deps.get() {
            link.graph.invalidate_cache(link.id);
            link.graph.save()?;
        }
        match (&hooks.deleter, &self.store) {
            (Some(deleter), _) => deleter(&self.name).map_err(|e| self.hook_error("deleter", e)),
            (None, Some(store)) => store.invalidate(epoch),
            (None, None) => Ok(()),
        }
    }

    fn delete_saved(&self) -> Result<(), Error> {
        let hooks = self.hooks();
        let _saving = self.lock_saves();
        self.delete_stored(&hooks)
    }

    fn reload(&self) -> Result<(), Error> {
        self.load_or_build(true)
    }

    fn rebuild(&self) -> Result<(), Error> {
        self.invalidate_local()?;
        let hooks = self.hooks();
        let rows = self.build(&hooks)?;
        let built = rows.len() as u64;
        self.replace_contents(rows);
        // What was built replaces what is stored: saved whole.
        if built > 0 {
            self.cleared.store(true, Ordering::Release);
        }
        self.note_changes(built);
        // As CacheMan does: what was built is saved, so that a reload or another process
        // finds it rather than the empty file the invalidation left.
        self.save_now()
    }

    fn changes_since_save(&self) -> u64 {
        self.pending_changes()
    }

    fn is_persistent(&self) -> bool {
        self.store.is_some()
    }

    fn writes_somewhere(&self) -> bool {
        self.store.is_some() || self.hooks().saver.is_some()
    }

    fn save_state(&self) -> &crate::autosync::SaveState {
        &self.autosync
    }

    fn now_ms(&self) -> u64 {
        CacheInner::now_ms(self)
    }

    fn on_manual_clock(&self) -> bool {
        self.clock.is_manual()
    }
}
