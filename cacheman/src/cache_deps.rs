//! A cache's side of per-entry dependencies: recording what a computation reads, recording the
//! computed entry, setting aside the entries an invalidation reaches, and serving them again
//! when their inputs turn out unchanged. The rules themselves live in `deps/`.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use crate::Error;
use crate::cache::{CacheInner, Leader, Outcome, on_maps};
use crate::deps::{
    CacheLink, Explanation, Frame, HashSet, Holder, Input, Staleness, Verdict, stable_hash,
};
use crate::query::Query;

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
    /// A frame for the computation of one of this cache's entries, if the cache is in a
    /// manager's graph.
    pub(crate) fn frame(&self) -> Option<Frame> {
        self.deps.get().map(|link| Frame::new(link.graph.clone()))
    }

    /// The stamp of a value: a hash of its encoding when the cache can encode it (equal
    /// values then have equal stamps, in every process), else a number never used before.
    fn stamp_of(&self, value: &V, link: &CacheLink) -> u64 {
        self.persistence
            .as_ref()
            .and_then(|p| p.fingerprint(value))
            .unwrap_or_else(|| link.graph.fresh_stamp())
    }

    fn remember_key(&self, hash: u64, key: &K) {
        let recorded = {
            let mut recorded = lock(&self.recorded_keys);
            recorded.entry(hash).or_insert_with(|| key.clone());
            recorded.len()
        };
        // Entries leave by eviction, expiry or removal without telling the graph: once the
        // recorded keys are twice what was held at the last look, forget those that are gone
        // (a look costs the recorded keys, so this is amortized over the inserts).
        if recorded >= self.prune_at.load(Ordering::Relaxed) {
            self.prune_recorded();
        }
    }

    /// Forgets the recorded keys (and, in the graph, the inputs) of entries that are no longer
    /// held; a node that other entries read stays, as their record of its stamp.
    pub(crate) fn prune_recorded(&self) {
        let Some(link) = self.deps.get() else {
            return;
        };
        let gone: Vec<u64> = {
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

    /// A value found by a miss (someone else computed it): recorded like a hit.
    pub(crate) fn found<'a>(&'a self, key: &K, value: V) -> Outcome<'a, K, V> {
        if crate::deps::recording() {
            self.note_read(key, &value);
        }
        Outcome::Found(value)
    }

    /// Records the read of `key` (or of a borrowed form of it, which hashes alike) as an input
    /// of the computation open on this thread.
    #[cold]
    pub(crate) fn note_read<Q: Query<K> + ?Sized>(&self, key: &Q, value: &V) {
        let Some(link) = self.deps.get() else {
            return;
        };
        let hash = stable_hash(key);
        let seen = link
            .graph
            .stamp_for_read((link.id, hash), || self.stamp_of(value, link));
        if !lock(&self.recorded_keys).contains_key(&hash)
            && let Some(owned) = on_maps!(self, s, _now => s.key_of(key))
        {
            self.remember_key(hash, &owned);
        }
        crate::deps::record(
            &link.graph,
            Input {
                source: link.id,
                key: hash,
                seen,
            },
        );
    }

    /// Ends a computation this caller led: records the entry's inputs and stamp, stores the
    /// value unless an input changed meanwhile, and records the entry as read by the
    /// computation that asked for it, if any.
    pub(crate) fn computed(&self, leader: Leader<'_, K, V>, value: &V, inputs: Option<Vec<Input>>) {
        let Some(key) = leader.key() else {
            return;
        };
        let (storable, read) = self.record_computed(key, value, inputs);
        leader.complete(value, storable);
        self.record_read(read);
    }

    /// Ends a computation run whatever the cache held (`<fn>_refresh`): as [`Self::computed`],
    /// storing with an insert (no flight to land).
    pub(crate) fn refreshed(&self, key: K, value: &V, inputs: Option<Vec<Input>>) {
        let (storable, read) = self.record_computed(&key, value, inputs);
        if storable {
            let evicted = on_maps!(self, s, now => s.insert(key, value.clone(), now).1);
            self.counters.inserted(evicted);
        }
        self.record_read(read);
    }

    fn record_read(&self, read: Option<Input>) {
        if let (Some(link), Some(input)) = (self.deps.get(), read) {
            crate::deps::record(&link.graph, input);
        }
    }

    /// Records a computed entry in the graph. Returns whether the value may be stored, and the
    /// input to record in the computation that asked for it, if one did.
    fn record_computed(
        &self,
        key: &K,
        value: &V,
        inputs: Option<Vec<Input>>,
    ) -> (bool, Option<Input>) {
        let Some(link) = self.deps.get() else {
            return (true, None);
        };
        let hash = stable_hash(key);
        let inputs = inputs.unwrap_or_default();
        let outer = crate::deps::recording();
        let has_node = link.watched() && lock(&self.recorded_keys).contains_key(&hash);
        if inputs.is_empty() && !has_node && !outer {
            return (true, None);
        }
        let stamp = self.stamp_of(value, link);
        let stored = link.graph.computed((link.id, hash), inputs, stamp);
        if stored {
            self.remember_key(hash, key);
        }
        let read = outer.then(|| Input {
            source: link.id,
            key: hash,
            seen: if stored {
                link.graph.stamp_for_read((link.id, hash), || stamp)
            } else {
                stamp // not the node's: the outer computation will not be stored either
            },
        });
        (stored, read)
    }

    /// `insert` of an entry that has a node: the node takes the new value's stamp, and what
    /// read another value becomes suspect.
    pub(crate) fn stored_by_hand(&self, link: &CacheLink, key: &K, value: &V) {
        let hash = stable_hash(key);
        if !lock(&self.recorded_keys).contains_key(&hash) {
            return;
        }
        let stamp = self.stamp_of(value, link);
        link.graph.replaced((link.id, hash), Some(stamp));
    }

    /// Serves an entry that was set aside, if its inputs are unchanged (early cutoff: its
    /// body does not run).
    pub(crate) fn unpark<Q: Query<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        let link = self.deps.get()?;
        let hash = stable_hash(key);
        let (parked_key, value) = {
            let mut parked = lock(&self.parked);
            let found = parked.remove(&hash)?;
            if parked.is_empty() {
                self.has_parked.store(false, Ordering::Release);
            }
            found
        };
        if !key.matches(&parked_key) {
            return None; // two keys with one stable hash: recompute rather than guess
        }
        match link.graph.verify((link.id, hash)) {
            Verdict::Fresh => {
                let evicted = on_maps!(self, s, now => s.insert(parked_key, value.clone(), now).1);
                self.counters.inserted(evicted);
                Some(value)
            }
            Verdict::Stale => None,
        }
    }

    /// Decides, for rows just loaded (or adopted from another process's save), which ones
    /// the graph says are stale (`dirty`) or must be checked first (`suspect`).
    pub(crate) fn check_rows<'a>(
        &self,
        rows: impl Iterator<Item = (&'a K, &'a V)>,
    ) -> (HashSet<u64>, HashSet<u64>)
    where
        K: 'a,
        V: 'a,
    {
        let (mut dirty, mut suspect) = (HashSet::default(), HashSet::default());
        let Some(link) = self.deps.get().filter(|link| link.watched()) else {
            return (dirty, suspect);
        };
        for (key, value) in rows {
            let hash = stable_hash(key);
            let Some((state, stamp)) = link.graph.node((link.id, hash)) else {
                continue;
            };
            self.remember_key(hash, key);
            use crate::deps::NodeState;
            match state {
                // A value other than the one the graph recorded (a crash between the two
                // files, or another process's save): its inputs are unknown.
                NodeState::Clean if self.stamp_of(value, link) != stamp => dirty.insert(hash),
                NodeState::Clean => false,
                NodeState::Suspect => suspect.insert(hash),
                NodeState::Dirty => dirty.insert(hash),
            };
        }
        (dirty, suspect)
    }
}

impl<K, V> Holder for CacheInner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn invalidate_whole(&self) -> Result<(), Error> {
        crate::lifecycle::ErasedCache::invalidate_local(self)
    }

    fn take_off(&self, dirty: &HashSet<u64>, suspect: &HashSet<u64>) {
        let mut keys: Vec<(K, bool)> = Vec::new();
        let mut unknown = 0;
        {
            let recorded = lock(&self.recorded_keys);
            for (hashes, is_suspect) in [(dirty, false), (suspect, true)] {
                for hash in hashes {
                    match recorded.get(hash) {
                        Some(key) => keys.push((key.clone(), is_suspect)),
                        None => unknown += usize::from(!is_suspect),
                    }
                }
            }
        }
        if unknown > 0 {
            // Invalidated by hash without ever being recorded here (a manager-level
            // invalidation of an entry nobody read): find its key by looking at all.
            for key in on_maps!(self, s, now => s.keys(now)) {
                if dirty.contains(&stable_hash(&key)) {
                    keys.push((key, false));
                }
            }
        }
        {
            let mut parked = lock(&self.parked);
            for hash in dirty {
                parked.remove(hash);
            }
        }
        for (key, is_suspect) in keys {
            let Some(value) = on_maps!(self, s, now => s.remove(&key, now)) else {
                continue;
            };
            self.note_changes(1);
            // An entry with a time-to-live would come back with a new insertion stamp, so
            // it is recomputed instead of set aside.
            if is_suspect && self.options.ttl.is_none() {
                let hash = stable_hash(&key);
                lock(&self.parked).insert(hash, (key, value));
                self.has_parked.store(true, Ordering::Release);
            }
        }
    }
}

impl<K, V> crate::Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Invalidates the entry of `key` and, transitively, exactly the entries that read it
    /// while they were computed, in every cache of the manager: in memory, and on disk (the
    /// manager's graph file records it at once, so a cache file still holding an old value is
    /// not served from in a later process, nor in another one at its next save or load).
    ///
    /// The entries that read it are recomputed at their next lookup, unless the invalidated
    /// entry is recomputed first to the value it had (early cutoff): then they are served
    /// as they were.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let docs = manager.register_cache::<String, String>("docs").unwrap();
    /// let counts = manager.register_cache::<String, usize>("counts").unwrap();
    /// let count = |path: &str| {
    ///     counts.get_or_insert_with(path.to_owned(), || {
    ///         let text = docs.get_or_insert_with(path.to_owned(), || format!("text of {path}"));
    ///         text.split_whitespace().count()
    ///     })
    /// };
    /// assert_eq!(count("a.txt"), 3);
    /// assert_eq!(count("b.txt"), 3);
    /// docs.invalidate_key("a.txt").unwrap();
    /// assert!(!counts.contains_key("a.txt")); // it read a.txt
    /// assert!(counts.contains_key("b.txt")); // it did not
    /// ```
    ///
    /// # Errors
    ///
    /// If the manager's graph file cannot be written (memory is invalidated all the same).
    pub fn invalidate_key<Q>(&self, key: &Q) -> Result<(), Error>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        let hash = stable_hash(key);
        match inner.deps.get() {
            Some(link) => {
                if let Some(owned) = on_maps!(inner, s, _now => s.key_of(key)) {
                    inner.remember_key(hash, &owned);
                }
                link.graph.invalidate([((link.id, hash), None)]);
                link.graph.save()
            }
            None => {
                if on_maps!(inner, s, now => s.remove(key, now)).is_some() {
                    inner.note_changes(1);
                }
                Ok(())
            }
        }
    }

    /// What the entry of `key` read while it was computed, and whether each input is still
    /// what it read: why it is served, or why it will be recomputed.
    ///
    /// ```
    /// use cacheman::Staleness;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let raw = manager.register_cache::<u32, u32>("raw").unwrap();
    /// let doubled = manager.register_cache::<u32, u32>("doubled").unwrap();
    /// doubled.get_or_insert_with(1, || raw.get_or_insert_with(1, || 21) * 2);
    ///
    /// let why = doubled.explain(&1);
    /// assert_eq!(why.staleness, Staleness::Fresh);
    /// assert_eq!(why.inputs.len(), 1);
    /// raw.insert(1, 50);
    /// let why = doubled.explain(&1);
    /// assert_eq!(why.changed_inputs().count(), 1);
    /// println!("{why}"); // entry #… of cache `doubled`: suspect …
    /// ```
    pub fn explain<Q>(&self, key: &Q) -> Explanation
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        let hash = stable_hash(key);
        match inner.deps.get() {
            Some(link) => link.graph.explain(&inner.name, (link.id, hash)),
            None => Explanation {
                cache: inner.name.clone(),
                key_hash: hash,
                staleness: Staleness::Unrecorded,
                inputs: Vec::new(),
            },
        }
    }
}
