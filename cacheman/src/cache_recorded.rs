//! A cache's recorded keys: the keys of its entries that the per-entry graph knows, kept so
//! that entries that left the map without the graph being told (eviction, expiry, `remove`,
//! `clear`) can be found and forgotten there (docs/ARCHITECTURE.md, "Limits" of per-entry
//! dependencies).

use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use crate::cache::{CacheInner, on_maps};
use crate::deps::stable_hash;

/// Recorded keys a cache holds before it first looks for keys whose entries are gone.
pub(crate) const MIN_PRUNE_AT: usize = 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each change to these maps is one insert or remove: a poisoned one is still whole.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<K, V> CacheInner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn remember_key(&self, hash: u64, key: &K) {
        if self.remember(hash, key) {
            self.prune_recorded();
        }
    }

    /// Records `key` by its hash; returns whether it is time to prune (not done here: this is
    /// also called under the `landing` read lock, which pruning takes for writing).
    pub(crate) fn remember(&self, hash: u64, key: &K) -> bool {
        let mut recorded = lock(&self.recorded_keys);
        recorded.entry(hash).or_insert_with(|| key.clone());
        // Entries leave by eviction, expiry or removal without telling the graph: once the
        // recorded keys are twice what was held at the last look, forget those that are gone
        // (a look costs the recorded keys, so this is amortized over the inserts).
        recorded.len() >= self.prune_at.load(Ordering::Relaxed)
    }

    /// Forgets the recorded keys (and, in the graph, the inputs) of entries that are no longer
    /// held; a node that other entries read stays, as their record of its stamp.
    pub(crate) fn prune_recorded(&self) {
        let Some(link) = self.deps.get() else {
            return;
        };
        let gone: Vec<u64> = {
            // No computation between its check and its store: its key is remembered but the
            // value is not in the map yet.
            let _landing = self.landing_exclusive();
            let mut recorded = lock(&self.recorded_keys);
            let parked = lock(&self.parked);
            let mut gone = Vec::new();
            recorded.retain(|hash, key| {
                let held =
                    parked.contains_key(hash) || on_maps!(self, s, now => s.contains_key(key, now));
                if !held {
                    gone.push(*hash);
                }
                held
            });
            gone
        };
        let held = lock(&self.recorded_keys).len();
        self.prune_at
            .store((2 * held).max(MIN_PRUNE_AT), Ordering::Relaxed);
        if !gone.is_empty() {
            link.graph.forget(link.id, &gone);
        }
    }

    /// Before a save that appends: forgets the recorded keys among those changed since the
    /// last save (the shards' journal, which names every key inserted, removed, evicted or
    /// expired away since) that the map no longer holds. Costs the changes, where
    /// [`prune_recorded`](Self::prune_recorded) costs every recorded key; without a journal,
    /// it is that. Keys that left before the last save's journal was taken, or entries expired
    /// but still in the map, wait for the next whole prune (at a whole save, a `clear`, or
    /// when the recorded keys double).
    pub(crate) fn prune_changed(&self) {
        let Some(link) = self.deps.get() else {
            return;
        };
        let Some(changed) = on_maps!(self, s, _now => s.changed_keys()) else {
            return self.prune_recorded();
        };
        let gone: Vec<u64> = {
            // As in `prune_recorded`: no computation between its check and its store.
            let _landing = self.landing_exclusive();
            let mut recorded = lock(&self.recorded_keys);
            let parked = lock(&self.parked);
            changed
                .iter()
                .filter_map(|key| {
                    let hash = stable_hash(key);
                    let held = !recorded.contains_key(&hash)
                        || parked.contains_key(&hash)
                        || on_maps!(self, s, now => s.contains_key(key, now));
                    (!held).then(|| {
                        recorded.remove(&hash);
                        hash
                    })
                })
                .collect()
        };
        if !gone.is_empty() {
            link.graph.forget(link.id, &gone);
        }
    }
}
