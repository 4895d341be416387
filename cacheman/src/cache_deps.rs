//! A cache's side of per-entry dependencies: recording what a computation reads, recording the
//! computed entry, setting aside the entries an invalidation reaches, and serving them again
//! when their inputs turn out unchanged. The rules themselves live in `deps/`.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, RwLockReadGuard, RwLockWriteGuard};

use crate::Error;
use crate::cache::{CacheInner, on_maps};
use crate::cache_miss::{Leader, Outcome};
use crate::deps::{
    CacheLink, Explanation, Frame, HashSet, Holder, Input, Staleness, TakeOff, Verdict, stable_hash,
};
use crate::flight::Begin;
use crate::query::Query;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each change to these maps is one insert or remove: a poisoned one is still whole.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// An open section (see [`CacheInner::section`]).
pub(crate) struct Section<'a>(&'a std::sync::atomic::AtomicU64);

impl Drop for Section<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
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
        self.store
            .as_ref()
            .and_then(|p| p.fingerprint(value))
            .unwrap_or_else(|| link.graph.fresh_stamp())
    }

    /// Forgets the entry of `hash` set aside, if any: a newer value of it was stored, or it
    /// was removed.
    pub(crate) fn drop_parked(&self, hash: u64) {
        if self.has_parked.load(Ordering::Acquire) {
            let mut parked = lock(&self.parked);
            parked.remove(&hash);
            if parked.is_empty() {
                self.has_parked.store(false, Ordering::Release);
            }
        }
    }

    /// Forgets every entry set aside.
    pub(crate) fn drop_all_parked(&self) {
        lock(&self.parked).clear();
        self.has_parked.store(false, Ordering::Release);
    }

    /// The `landing` lock for a check and the store it allows (see [`CacheInner::landing`]).
    pub(crate) fn landing(&self) -> RwLockReadGuard<'_, ()> {
        // It guards no data: a poisoned one is as good.
        self.landing.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The `landing` lock for taking entries off (see [`CacheInner::landing`]).
    pub(crate) fn landing_exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.landing.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A value found by a miss (someone else computed it): recorded like a hit. The value was
    /// taken before this call, so no mark can vouch for the node's stamp: a cache that can
    /// hash its values records the value's own stamp (exact); a memory cache the node's, if no
    /// section overlaps the call.
    pub(crate) fn found<'a>(&'a self, key: &K, value: V) -> Outcome<'a, K, V> {
        if crate::deps::recording() {
            let mark = match &self.store {
                Some(_) => None,
                None => self.read_mark(),
            };
            self.note_read(key, &value, mark);
        }
        Outcome::Found(value)
    }

    /// A hit inside a computation: the entry is read again after a mark is taken (see
    /// [`Self::note_read`]), so that the hit path outside computations pays nothing for it.
    #[cold]
    #[inline(never)]
    pub(crate) fn read_in_computation<Q: Query<K> + ?Sized>(&self, key: &Q, first: V) -> V {
        let mark = self.read_mark();
        match on_maps!(self, s, now => s.get(key, now)) {
            crate::shards::Lookup::Hit(value) => {
                self.note_read(key, &value, mark);
                value
            }
            // Gone meanwhile: the value read before the mark, recorded by its own stamp.
            crate::shards::Lookup::Miss => {
                self.note_read(key, &first, None);
                first
            }
        }
    }

    /// Taken before a read inside a computation: `None` if a section (see
    /// [`CacheInner::sections_started`]) is under way.
    #[inline]
    pub(crate) fn read_mark(&self) -> Option<u64> {
        let ended = self.sections_ended.load(Ordering::SeqCst);
        let started = self.sections_started.load(Ordering::SeqCst);
        (ended == started).then_some(started)
    }

    /// Opens a section: a value is stored and its node given a stamp, not as one step for a
    /// reader (see [`CacheInner::sections_started`]). Ends when dropped.
    pub(crate) fn section(&self) -> Section<'_> {
        self.sections_started.fetch_add(1, Ordering::SeqCst);
        Section(&self.sections_ended)
    }

    /// Records the read of `key` (or of a borrowed form of it, which hashes alike) as an input
    /// of the computation open on this thread. `mark` was taken before the value was read: if
    /// a section started since, the value may be older than its node's stamp, and the stamp of
    /// the value itself is recorded (a hash, or for a memory cache a number never used, which
    /// keeps the computation from being stored).
    #[cold]
    pub(crate) fn note_read<Q: Query<K> + ?Sized>(&self, key: &Q, value: &V, mark: Option<u64>) {
        let Some(link) = self.deps.get() else {
            return;
        };
        let hash = stable_hash(key);
        let seen = link
            .graph
            .stamp_for_read((link.id, hash), || self.stamp_of(value, link));
        let consistent =
            mark.is_some_and(|mark| self.sections_started.load(Ordering::SeqCst) == mark);
        let seen = if consistent {
            seen
        } else {
            self.stamp_of(value, link)
        };
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
        let mut take_off = TakeOff::default();
        let (read, prune) = {
            // The check (inputs unchanged, nothing invalidated meanwhile) and the store are
            // one step for the take-offs, which wait for it.
            let _landing = self.landing();
            let _section = self.section();
            let current = leader.is_current();
            let since = leader.generation();
            let (storable, read, prune) =
                self.record_computed(key, value, inputs, (current, since), &mut take_off);
            // What was set aside of this key is older than this computation (a take-off
            // after it would have waited for the lock): never served again.
            self.drop_parked(stable_hash(key));
            leader.complete(value, storable);
            (read, prune)
        };
        self.after_landing(take_off, prune, read);
    }

    /// Ends a computation run whatever the cache held (`<fn>_refresh`): as [`Self::computed`],
    /// storing with an insert (no flight to land), unless the cache was invalidated since
    /// `epoch`.
    pub(crate) fn refreshed(
        &self,
        key: K,
        value: &V,
        inputs: Option<Vec<Input>>,
        (epoch, since): (u64, u64),
    ) {
        let mut take_off = TakeOff::default();
        let (read, prune) = {
            let _landing = self.landing();
            let _section = self.section();
            let current = self.epoch.load(Ordering::Acquire) == epoch;
            let (storable, read, prune) =
                self.record_computed(&key, value, inputs, (current, since), &mut take_off);
            self.drop_parked(stable_hash(&key));
            if storable {
                let evicted = on_maps!(self, s, now => s.insert(key, value.clone(), now).1);
                self.counters.inserted(evicted);
            }
            (read, prune)
        };
        self.after_landing(take_off, prune, read);
    }

    /// What a landing leaves to do once its lock is let go: the take-offs it caused (a
    /// recomputed entry with another stamp), a due pruning, the read by the outer computation.
    fn after_landing(&self, take_off: TakeOff, prune: bool, read: Option<Input>) {
        if let Some(link) = self.deps.get() {
            link.graph.apply(take_off);
        }
        if prune {
            self.prune_recorded();
        }
        self.record_read(read);
    }

    fn record_read(&self, read: Option<Input>) {
        if let (Some(link), Some(input)) = (self.deps.get(), read) {
            crate::deps::record(&link.graph, input);
        }
    }

    /// Records a computed entry in the graph, unless `current` is false (its cache was
    /// invalidated while it was computed). `since` is the graph's generation when the
    /// computation started: an entry invalidated after it is not recorded either (the graph
    /// keeps what the invalidation made of it). Returns whether the value may be stored, the
    /// input to record in the computation that asked for it, if one did, and whether to prune
    /// recorded keys. Called under the `landing` read lock: what the graph takes off is left
    /// in `take_off`.
    fn record_computed(
        &self,
        key: &K,
        value: &V,
        inputs: Option<Vec<Input>>,
        (current, since): (bool, u64),
        take_off: &mut TakeOff,
    ) -> (bool, Option<Input>, bool) {
        let Some(link) = self.deps.get() else {
            return (current, None, false);
        };
        let hash = stable_hash(key);
        let inputs = inputs.unwrap_or_default();
        let outer = crate::deps::recording();
        // A cache with no node at all cannot have had this entry invalidated (an invalidation
        // makes a node, and marks the cache watched, under the graph's lock).
        if current && inputs.is_empty() && !link.watched() && !outer {
            return (true, None, false);
        }
        let stamp = self.stamp_of(value, link);
        let stored = current
            && link
                .graph
                .computed((link.id, hash), inputs, stamp, since, take_off);
        let prune = stored && self.remember(hash, key);
        let read = outer.then(|| Input {
            source: link.id,
            key: hash,
            seen: if stored {
                link.graph.stamp_for_read((link.id, hash), || stamp)
            } else {
                stamp // not the node's: the outer computation will not be stored either
            },
        });
        (stored, read, prune)
    }

    /// `insert` of an entry that has a node (known by its recorded key or found in the
    /// graph): the key hash and the stamp of the new value, for the node to take once the map
    /// holds it (what read another value then becomes suspect).
    pub(crate) fn stamp_by_hand(&self, link: &CacheLink, key: &K, value: &V) -> Option<(u64, u64)> {
        let hash = stable_hash(key);
        if !lock(&self.recorded_keys).contains_key(&hash) {
            link.graph.node((link.id, hash))?;
            // A node whose key was never seen here (invalidated by hash): remember the key,
            // so that a later take-off finds the entry.
            self.remember_key(hash, key);
        }
        Some((hash, self.stamp_of(value, link)))
    }

    /// The graph's invalidation generation now (0 for a cache outside a manager's graph): an
    /// entry invalidated later than a computation started is not stored by it.
    pub(crate) fn generation(&self) -> u64 {
        self.deps.get().map_or(0, |link| link.graph.generation())
    }

    /// Serves an entry that was set aside, if its inputs are unchanged (early cutoff: its
    /// body does not run). It takes the key's flight first, as a miss does, so that no
    /// computation of the key lands between the verdict and the store (a value set aside is
    /// older than any such computation, and would overwrite it); if someone computes the key
    /// now, what was set aside is dropped and the caller misses.
    pub(crate) fn unpark<Q: Query<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        let link = self.deps.get()?;
        let hash = stable_hash(key);
        let mut take_off = TakeOff::default();
        let served = {
            // A take-off between the verdict and the insert would miss the entry: none can.
            let _landing = self.landing();
            let _section = self.section();
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
            match self.begin_miss(&parked_key, false) {
                Ok(Begin::Lead) => {
                    let leader = self.leader(parked_key);
                    match link.graph.verify((link.id, hash), &mut take_off) {
                        Verdict::Fresh => {
                            leader.complete(&value, true);
                            Some(value)
                        }
                        Verdict::Stale => None, // the leader's drop lets its waiters compute
                    }
                }
                Ok(Begin::Ready(value)) => Some(value),
                Ok(Begin::Follow(_)) | Err(_) => None,
            }
        };
        link.graph.apply(take_off);
        served
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

    fn stats(&self) -> crate::CacheStats {
        let mut stats = self.counters.snapshot();
        stats.entries = on_maps!(self, s, now => s.len(now)) as u64;
        stats
    }

    fn take_off(&self, dirty: &HashSet<u64>, suspect: &HashSet<u64>) {
        // On a shared store the entries go for every host: invalidated ones with the readers
        // recorded of them there (see `store/redis/readers.rs`); suspect ones (they read a
        // value since replaced, whose readers the store took off itself) are removed only, so
        // that a computation of them reading the new value still lands.
        if let Some(shared) = self.shared() {
            for hash in dirty {
                shared.invalidate_entry(*hash);
            }
            for hash in suspect {
                shared.remove(*hash);
            }
        }
        // No computation of this cache is between its check and its store while entries are
        // taken off; one that lands after is checked against the graph as it is now.
        let _landing = self.landing_exclusive();
        let mut keys: Vec<(K, bool)> = Vec::new();
        let mut unknown = 0;
        {
            let recorded = lock(&self.recorded_keys);
            for (hashes, is_suspect) in [(dirty, false), (suspect, true)] {
                for hash in hashes {
                    match recorded.get(hash) {
                        Some(key) => keys.push((key.clone(), is_suspect)),
                        None => unknown += 1,
                    }
                }
            }
        }
        if unknown > 0 {
            // Reached by hash without ever being recorded here (a manager-level
            // invalidation of an entry nobody read): find its key by looking at all.
            for key in on_maps!(self, s, now => s.keys(now)) {
                let hash = stable_hash(&key);
                let recorded = || lock(&self.recorded_keys).contains_key(&hash);
                if dirty.contains(&hash) && !recorded() {
                    keys.push((key, false));
                } else if suspect.contains(&hash) && !recorded() {
                    keys.push((key, true));
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
