//! The in-memory map behind a cache: a fixed number of shards, each a `RwLock` around a hash
//! table, so that hits only take a shared lock on one shard and misses on different keys rarely
//! meet. A key is hashed once: the high bits of its hash pick the shard, the same hash finds the
//! entry in the shard's table.
//!
//! Entries carry a `Meta`: `()` for plain caches (no cost at all) or [`Tracked`] for caches
//! with a time-to-live or a capacity, which need an insertion time and a recency order.

mod sync;

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use hashbrown::HashTable;

use crate::flight::{Begin, InFlight, Reentrant};
use crate::query::Query;
use hashbrown::hash_table::Entry as Slot;

/// The hasher of every cache map: fast, and seeded per process so keys cannot be chosen to
/// collide (unlike a fixed-seed hasher).
pub(crate) type Hasher = foldhash::fast::RandomState;

/// Per-entry bookkeeping, chosen once per cache.
pub(crate) trait Meta: Send + Sync + 'static {
    /// Whether entries carry a stamp and a recency tick: a cache without them has neither a
    /// time-to-live nor a capacity, which its lookups then need not check.
    const TRACKED: bool;
    fn stamped(now_ms: u64, tick: u64) -> Self;
    fn stamp_ms(&self) -> u64;
    fn tick(&self) -> Option<u64>;
    fn tick_mut(&mut self) -> Option<&mut u64>;
}

impl Meta for () {
    const TRACKED: bool = false;
    fn stamped(_: u64, _: u64) -> Self {}
    fn stamp_ms(&self) -> u64 {
        0
    }
    fn tick(&self) -> Option<u64> {
        None
    }
    fn tick_mut(&mut self) -> Option<&mut u64> {
        None
    }
}

/// Bookkeeping of caches with a TTL or a capacity.
pub(crate) struct Tracked {
    /// When the entry was inserted, in milliseconds since the Unix epoch (by the cache's clock).
    stamp_ms: u64,
    /// Position in the shard's recency order; larger is more recent.
    tick: u64,
}

impl Meta for Tracked {
    const TRACKED: bool = true;
    fn stamped(now_ms: u64, tick: u64) -> Self {
        Tracked {
            stamp_ms: now_ms,
            tick,
        }
    }
    fn stamp_ms(&self) -> u64 {
        self.stamp_ms
    }
    fn tick(&self) -> Option<u64> {
        Some(self.tick)
    }
    fn tick_mut(&mut self) -> Option<&mut u64> {
        Some(&mut self.tick)
    }
}

pub(crate) struct Entry<K, V, M> {
    key: K,
    value: V,
    meta: M,
}

/// Where a snapshot puts the entries it copies out of the shards: cloned rows, or bytes
/// encoded on the spot (the file store's encoder, `store::codec`).
pub(crate) trait Sink<K, V> {
    type Error;
    /// How much the sink holds, to go back to when a shard must be copied again.
    fn mark(&self) -> Mark;
    fn rewind(&mut self, mark: Mark);
    fn put(&mut self, key: &K, value: &V, stamp_ms: u64) -> Result<(), Self::Error>;
    /// Called after each hold of a shard's lock, with no lock held: the moment for slow work
    /// (a streamed save writes what it gathered).
    fn unlocked(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Whether the sink reads memory behind the values (a byte vector's bytes) and wants to
    /// hear of each value a little before it is put ([`Sink::coming`]).
    fn wants_hints(&self) -> bool {
        false
    }
    /// A hint that `value` will be put soon, for the sink to ask the CPU to fetch the memory
    /// behind it meanwhile.
    #[inline]
    fn coming(&self, _value: &V) {}
}

/// A position in a [`Sink`]: items and bytes held.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    pub items: usize,
    pub bytes: u64,
}

impl<K: Clone, V: Clone> Sink<K, V> for Vec<(K, V, u64)> {
    type Error = std::convert::Infallible;
    fn mark(&self) -> Mark {
        Mark {
            items: self.len(),
            bytes: 0,
        }
    }
    fn rewind(&mut self, mark: Mark) {
        self.truncate(mark.items);
    }
    fn put(&mut self, key: &K, value: &V, stamp_ms: u64) -> Result<(), Self::Error> {
        self.push((key.clone(), value.clone(), stamp_ms));
        Ok(())
    }
}

/// The keys of a snapshot, without their values.
struct Keys<K>(Vec<K>);

impl<K: Clone, V> Sink<K, V> for Keys<K> {
    type Error = std::convert::Infallible;
    fn mark(&self) -> Mark {
        Mark {
            items: self.0.len(),
            bytes: 0,
        }
    }
    fn rewind(&mut self, mark: Mark) {
        self.0.truncate(mark.items);
    }
    fn put(&mut self, key: &K, _: &V, _: u64) -> Result<(), Self::Error> {
        self.0.push(key.clone());
        Ok(())
    }
}

/// The value of a result whose error cannot happen.
pub(crate) fn infallible<T>(result: Result<T, std::convert::Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

/// Buckets copied per hold of a shard's read lock while a snapshot is taken. Small enough that
/// a writer waiting for the lock is still spinning when it is released (no sleep and wake-up),
/// even when the entries are encoded on the spot. Measured with `autosync_ratio` (inserts during
/// a save / without): 16 buckets 0.88-0.97 but 30 % fewer saves, 32: 0.87, 64: 0.85-0.86.
const CHUNK_BUCKETS: usize = 32;

/// How many buckets ahead of the copy [`Sink::coming`] is told about.
const PREFETCH_AHEAD: usize = 16;

pub(crate) struct Shard<K, V, M> {
    table: HashTable<Entry<K, V, M>>,
    /// Keys inserted or removed since the contents were last in step with the file, for the
    /// merge with other processes' saves (see `sync.rs`). `None` when not tracked. Behind its
    /// own lock so that a save can drain it under the shard's read lock: lookups go on while a
    /// save copies the shard. Boxed so that a locked shard fits in 128 bytes (see
    /// [`default_shard_count`]).
    journal: Option<Box<Mutex<HashSet<K, Hasher>>>>,
    /// Recency order of bounded caches: tick → key. Empty for unbounded caches.
    order: BTreeMap<u64, K>,
    next_tick: u64,
    /// Keys of this shard being computed by a miss (see `flight.rs`), with their key's hash.
    flights: HashTable<(u64, K, InFlight<V>)>,
    /// Bumped whenever the table may move its entries to other buckets (growth, rehash, clear),
    /// so that a snapshot copying the table a few buckets per lock hold knows when the buckets
    /// it already copied no longer say where the entries are.
    layout: u64,
}

impl<K, V, M> Shard<K, V, M> {
    /// The journal, for the holder of the shard's write lock (which needs no second lock).
    fn journal_mut(&mut self) -> Option<&mut HashSet<K, Hasher>> {
        // A poisoned journal is a whole set: a panic cannot stop a `HashSet` half-way.
        let journal = self.journal.as_mut()?;
        Some(journal.get_mut().unwrap_or_else(|e| e.into_inner()))
    }
}

type LockedShard<K, V, M> = Padded<RwLock<Shard<K, V, M>>>;

// Keeps two shards' locks off one cache line, so readers of one do not slow readers of another.
#[repr(align(128))]
struct Padded<T>(T);

/// What a lookup found.
pub(crate) enum Lookup<V> {
    Hit(V),
    Miss,
}

/// Limits of a tracked cache.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    /// Entries older than this are not served.
    pub ttl: Option<Duration>,
    /// Most entries the cache holds, split between its shards (see [`Shards::capacity_of`]).
    pub capacity: Option<usize>,
    /// Whether to journal the keys changed since the last sync with the file.
    pub journal: bool,
}

pub(crate) struct Shards<K, V, M> {
    shards: Box<[LockedShard<K, V, M>]>,
    hasher: Hasher,
    limits: Limits,
}

/// How many shards a cache gets: many per core, so that threads rarely meet on one shard.
/// Misses of distinct keys on two threads (`benches/src/bin/miss_scaling.rs`, 2 cores) reached
/// 1.6-2.0x one thread's throughput with 64 shards (16 runs) against 1.2-1.75x with 8 (23 runs),
/// and inserts during a save 0.93-0.96x their speed without one against 0.80-0.83x (3
/// alternating runs each); hits do not change. An empty shard takes 128 bytes: 8 KiB per cache
/// here, at most 32 KiB.
pub(crate) fn default_shard_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    (cores * 32).next_power_of_two().clamp(64, 256)
}

impl<K, V, M> Shards<K, V, M>
where
    K: Hash + Eq + Clone,
    V: Clone,
    M: Meta,
{
    pub(crate) fn new(shard_count: usize, hasher: Hasher, limits: Limits) -> Self {
        debug_assert!(shard_count.is_power_of_two());
        let shards = (0..shard_count)
            .map(|_| {
                Padded(RwLock::new(Shard {
                    table: HashTable::new(),
                    journal: limits
                        .journal
                        .then(|| Box::new(Mutex::new(HashSet::with_hasher(hasher.clone())))),
                    order: BTreeMap::new(),
                    next_tick: 0,
                    flights: HashTable::new(),
                    layout: 0,
                }))
            })
            .collect();
        Shards {
            shards,
            hasher,
            limits,
        }
    }

    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    fn index_of(&self, hash: u64) -> usize {
        // The high bits: the low ones pick the bucket inside the shard's table.
        (hash >> 32) as usize & (self.shards.len() - 1)
    }

    /// Index of the shard holding `key`.
    fn shard_of(&self, key: &K) -> usize {
        self.index_of(self.hash(key))
    }

    fn read(&self, index: usize) -> RwLockReadGuard<'_, Shard<K, V, M>> {
        // A panic while holding a shard lock cannot leave a half-written HashMap behind (std's
        // map is unwind-safe), so the poison flag carries no information worth failing on.
        self.shards[index]
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, index: usize) -> RwLockWriteGuard<'_, Shard<K, V, M>> {
        self.shards[index]
            .0
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    #[inline]
    fn is_live(&self, meta: &M, now_ms: u64) -> bool {
        if !M::TRACKED {
            return true;
        }
        match self.limits.ttl {
            Some(ttl) => now_ms.saturating_sub(meta.stamp_ms()) < ttl.as_millis() as u64,
            None => true,
        }
    }

    /// Most entries shard `index` holds (least recently used ones are evicted beyond it): its
    /// share of the cache's capacity, the shares adding up to exactly that capacity.
    fn capacity_of(&self, index: usize) -> usize {
        let n = self.shards.len();
        match self.limits.capacity {
            Some(c) => c / n + usize::from(index < c % n),
            None => usize::MAX,
        }
    }

    #[inline]
    fn bounded(&self) -> bool {
        M::TRACKED && self.limits.capacity.is_some()
    }

    #[inline]
    pub(crate) fn get<Q: Query<K> + ?Sized>(&self, key: &Q, now_ms: u64) -> Lookup<V> {
        let hash = self.hash(key);
        let index = self.index_of(hash);
        if !self.bounded() {
            let shard = self.read(index);
            return match shard.table.find(hash, |e| key.matches(&e.key)) {
                Some(entry) if self.is_live(&entry.meta, now_ms) => {
                    Lookup::Hit(entry.value.clone())
                }
                _ => Lookup::Miss,
            };
        }
        // A hit on a bounded cache moves the key to the front of the recency order.
        let mut guard = self.write(index);
        let shard = &mut *guard;
        let Some(entry) = shard.table.find_mut(hash, |e| key.matches(&e.key)) else {
            return Lookup::Miss;
        };
        if !self.is_live(&entry.meta, now_ms) {
            return Lookup::Miss;
        }
        let old_tick = entry
            .meta
            .tick_mut()
            .map(|t| std::mem::replace(t, shard.next_tick));
        if let Some(old) = old_tick {
            if let Some(k) = shard.order.remove(&old) {
                shard.order.insert(shard.next_tick, k);
            }
            shard.next_tick += 1;
        }
        Lookup::Hit(entry.value.clone())
    }

    pub(crate) fn contains_key<Q: Query<K> + ?Sized>(&self, key: &Q, now_ms: u64) -> bool {
        let hash = self.hash(key);
        let shard = self.read(self.index_of(hash));
        shard
            .table
            .find(hash, |e| key.matches(&e.key))
            .is_some_and(|entry| self.is_live(&entry.meta, now_ms))
    }

    /// A clone of the stored key that `key` finds (for a lookup made with a borrowed form).
    pub(crate) fn key_of<Q: Query<K> + ?Sized>(&self, key: &Q) -> Option<K> {
        let hash = self.hash(key);
        let shard = self.read(self.index_of(hash));
        shard
            .table
            .find(hash, |e| key.matches(&e.key))
            .map(|e| e.key.clone())
    }

    /// Inserts and returns the previous live value, and how many entries were evicted.
    pub(crate) fn insert(&self, key: K, value: V, now_ms: u64) -> (Option<V>, usize) {
        let hash = self.hash(&key);
        let mut shard = self.write(self.index_of(hash));
        if let Some(journal) = shard.journal_mut() {
            journal.insert(key.clone());
        }
        self.insert_locked(&mut shard, hash, key, value, now_ms)
    }

    fn insert_locked(
        &self,
        shard: &mut Shard<K, V, M>,
        hash: u64,
        key: K,
        value: V,
        now_ms: u64,
    ) -> (Option<V>, usize) {
        let tick = shard.next_tick;
        shard.next_tick += 1;
        if self.bounded() {
            shard.order.insert(tick, key.clone());
        }
        let meta = M::stamped(now_ms, tick);
        if shard.table.len() == shard.table.capacity() {
            // `entry` reserves room before it looks: with no room left, the table grows or
            // rehashes in place, moving entries, even when the key is already there.
            shard.layout += 1;
        }
        let rehash = |e: &Entry<K, V, M>| self.hash(&e.key);
        let previous = match shard.table.entry(hash, |e| e.key == key, rehash) {
            Slot::Occupied(mut slot) => {
                let old = std::mem::replace(slot.get_mut(), Entry { key, value, meta });
                if let Some(t) = old.meta.tick() {
                    shard.order.remove(&t);
                }
                self.is_live(&old.meta, now_ms).then_some(old.value)
            }
            Slot::Vacant(slot) => {
                slot.insert(Entry { key, value, meta });
                None
            }
        };
        let mut evicted = 0;
        if self.bounded() {
            let capacity = self.capacity_of(self.index_of(hash));
            while shard.table.len() > capacity {
                let Some((_, oldest)) = shard.order.pop_first() else {
                    break;
                };
                let hash = self.hash(&oldest);
                if let Ok(slot) = shard.table.find_entry(hash, |e| e.key == oldest) {
                    slot.remove();
                }
                evicted += 1;
            }
        }
        (previous, evicted)
    }

    /// Removes `key` from a locked shard's table and recency order.
    fn take_locked<Q: Query<K> + ?Sized>(
        &self,
        shard: &mut Shard<K, V, M>,
        key: &Q,
    ) -> Option<Entry<K, V, M>> {
        let slot = shard
            .table
            .find_entry(self.hash(key), |e| key.matches(&e.key))
            .ok()?;
        let (removed, _) = slot.remove();
        if let Some(t) = removed.meta.tick() {
            shard.order.remove(&t);
        }
        Some(removed)
    }

    pub(crate) fn remove<Q: Query<K> + ?Sized>(&self, key: &Q, now_ms: u64) -> Option<V> {
        let mut shard = self.write(self.index_of(self.hash(key)));
        let removed = self.take_locked(&mut shard, key)?;
        if let Some(journal) = shard.journal_mut() {
            journal.insert(removed.key.clone());
        }
        self.is_live(&removed.meta, now_ms).then_some(removed.value)
    }

    /// The first step of a miss, under the shard's write lock: the value if it appeared since
    /// the caller looked, else the flight of whoever computes it, else the caller leads.
    pub(crate) fn begin_miss(
        &self,
        key: &K,
        now_ms: u64,
        sync_caller: bool,
    ) -> Result<Begin<V>, Reentrant> {
        let hash = self.hash(key);
        let mut guard = self.write(self.index_of(hash));
        let shard = &mut *guard;
        if let Some(entry) = shard.table.find(hash, |e| e.key == *key)
            && self.is_live(&entry.meta, now_ms)
        {
            return Ok(Begin::Ready(entry.value.clone()));
        }
        if let Some((_, _, in_flight)) = shard.flights.find_mut(hash, |f| f.1 == *key) {
            return in_flight.follow(sync_caller).map(Begin::Follow);
        }
        let in_flight = InFlight::new(sync_caller);
        shard
            .flights
            .insert_unique(hash, (hash, key.clone(), in_flight), |f| f.0);
        Ok(Begin::Lead)
    }

    /// The last step of a miss: ends the key's flight and, with `Some(value)`, stores the
    /// value, both under one write lock. Returns the flight, for the caller to tell its waiters
    /// outside the lock, and how many entries were evicted.
    pub(crate) fn finish_miss(
        &self,
        key: K,
        value: Option<V>,
        now_ms: u64,
    ) -> (Option<InFlight<V>>, usize) {
        let hash = self.hash(&key);
        let mut guard = self.write(self.index_of(hash));
        let shard = &mut *guard;
        let in_flight = match shard.flights.find_entry(hash, |f| f.1 == key) {
            Ok(found) => Some(found.remove().0.2),
            Err(_) => None,
        };
        let mut evicted = 0;
        if let Some(value) = value {
            if let Some(journal) = shard.journal_mut() {
                journal.insert(key.clone());
            }
            evicted = self.insert_locked(shard, hash, key, value, now_ms).1;
        }
        (in_flight, evicted)
    }

    /// Entries held, counting expired ones that were not yet dropped.
    pub(crate) fn len(&self) -> usize {
        (0..self.shards.len())
            .map(|i| self.read(i).table.len())
            .sum()
    }

    /// Empties every shard; returns how many entries were dropped.
    pub(crate) fn clear(&self) -> usize {
        let mut dropped = 0;
        for i in 0..self.shards.len() {
            let mut shard = self.write(i);
            dropped += shard.table.len();
            shard.table.clear();
            shard.order.clear();
            shard.layout += 1;
            // A clear replaces the whole contents; the caller records that, not each key.
            if let Some(journal) = shard.journal_mut() {
                journal.clear();
            }
        }
        dropped
    }

    /// Clones the live entries with their insertion stamps, a few buckets per lock hold (see
    /// [`Shards::copy_shard`]).
    pub(crate) fn snapshot(&self, now_ms: u64) -> Vec<(K, V, u64)> {
        let mut rows = Vec::with_capacity(self.len());
        for i in 0..self.shards.len() {
            infallible(self.copy_shard(i, now_ms, &mut rows, |_| {}));
        }
        rows
    }

    /// Clones the live keys.
    pub(crate) fn keys(&self, now_ms: u64) -> Vec<K> {
        let mut keys = Keys(Vec::new());
        for i in 0..self.shards.len() {
            infallible(self.copy_shard(i, now_ms, &mut keys, |_| {}));
        }
        keys.0
    }

    /// Puts each live entry of shard `index` into `sink`, holding the shard's read lock for at
    /// most [`CHUNK_BUCKETS`] buckets at a time: a writer to the shard waits for one chunk, not
    /// for the whole shard (which stopped inserts for most of a save). `first` runs under the
    /// first hold.
    ///
    /// Entries stay in their buckets between holds unless the table grows or rehashes (the
    /// shard's `layout` changes); then the sink goes back to where this shard began and the
    /// shard is copied again, whole, under that one hold. An entry changed between holds is
    /// copied as it was or as it is, like any change made while a save runs: it still counts
    /// toward the next save.
    pub(crate) fn copy_shard<S: Sink<K, V> + ?Sized>(
        &self,
        index: usize,
        now_ms: u64,
        sink: &mut S,
        first: impl FnOnce(&Shard<K, V, M>),
    ) -> Result<(), S::Error> {
        self.copy_shard_between(index, now_ms, sink, first, || {})
    }

    /// [`Shards::copy_shard`], running `between` whenever the lock is let go mid-copy (tests
    /// change the shard there).
    fn copy_shard_between<S: Sink<K, V> + ?Sized>(
        &self,
        index: usize,
        now_ms: u64,
        sink: &mut S,
        first: impl FnOnce(&Shard<K, V, M>),
        mut between: impl FnMut(),
    ) -> Result<(), S::Error> {
        let start = sink.mark();
        let hints = sink.wants_hints();
        let mut first = Some(first);
        let mut layout = None;
        let mut next = 0;
        loop {
            let shard = self.read(index);
            let buckets = shard.table.num_buckets();
            if let Some(first) = first.take() {
                first(&shard);
                layout = Some(shard.layout);
            }
            let end = if layout == Some(shard.layout) {
                (next + CHUNK_BUCKETS).min(buckets)
            } else {
                sink.rewind(start);
                next = 0;
                buckets
            };
            for b in next..end {
                // Values live apart from the table, in hash order: without a hint, each one
                // is a cache miss the copy waits for.
                if hints && let Some(ahead) = shard.table.get_bucket(b + PREFETCH_AHEAD) {
                    sink.coming(&ahead.value);
                }
                let Some(entry) = shard.table.get_bucket(b) else {
                    continue;
                };
                if self.is_live(&entry.meta, now_ms) {
                    sink.put(&entry.key, &entry.value, entry.meta.stamp_ms())?;
                }
            }
            next = end;
            drop(shard);
            sink.unlocked()?;
            if end == buckets {
                return Ok(());
            }
            // A writer spinning for the lock sees it free only if it stays free for a moment.
            for _ in 0..8 {
                std::hint::spin_loop();
            }
            between();
        }
    }

    /// Replaces the whole contents with `rows` (key, value, insertion stamp; a stamp of 0 means
    /// "now"). Returns how many entries were dropped by capacity.
    pub(crate) fn replace_all(&self, rows: Vec<(K, V, u64)>, now_ms: u64) -> usize {
        let count = self.shards.len();
        let mut buckets: Vec<Vec<(u64, K, V, u64)>> = (0..count).map(|_| Vec::new()).collect();
        for (key, value, stamp) in rows {
            let hash = self.hash(&key);
            buckets[self.index_of(hash)].push((hash, key, value, stamp));
        }
        let mut evicted = 0;
        for (i, bucket) in buckets.into_iter().enumerate() {
            let mut shard = self.write(i);
            shard.table.clear();
            shard.order.clear();
            shard.layout += 1;
            // Memory now equals what was loaded: nothing is changed relative to it.
            if let Some(journal) = shard.journal_mut() {
                journal.clear();
            }
            shard
                .table
                .reserve(bucket.len(), |e| self.hasher.hash_one(&e.key));
            for (hash, key, value, stamp) in bucket {
                let stamp = if stamp == 0 { now_ms } else { stamp };
                evicted += self.insert_locked(&mut shard, hash, key, value, stamp).1;
            }
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Shards<u32, u32, ()> {
        fn extend_for_test(&self, keys: std::ops::Range<u32>) {
            for k in keys {
                self.insert(k, k, 0);
            }
        }
    }

    fn bounded(capacity: usize) -> Shards<u32, u32, Tracked> {
        Shards::new(
            1,
            Hasher::default(),
            Limits {
                ttl: None,
                capacity: Some(capacity),
                journal: false,
            },
        )
    }

    #[test]
    fn the_shards_shares_of_a_capacity_add_up_to_it() {
        for (shards, capacity) in [(64, 100_000), (64, 64 * 1_563), (8, 4_099), (1, 7)] {
            let s: Shards<u32, u32, Tracked> = Shards::new(
                shards,
                Hasher::default(),
                Limits {
                    capacity: Some(capacity),
                    ..Limits::default()
                },
            );
            let shares: Vec<usize> = (0..shards).map(|i| s.capacity_of(i)).collect();
            assert_eq!(shares.iter().sum::<usize>(), capacity, "{shards} shards");
            let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
            assert!(max - min <= 1, "{shards} shards: shares {min}..={max}");
        }
    }

    #[test]
    fn least_recently_used_is_evicted_first() {
        let s = bounded(2);
        s.insert(1, 10, 0);
        s.insert(2, 20, 0);
        assert!(matches!(s.get(&1, 0), Lookup::Hit(10)));
        let (_, evicted) = s.insert(3, 30, 0);
        assert_eq!(evicted, 1);
        assert!(matches!(s.get(&2, 0), Lookup::Miss));
        assert!(matches!(s.get(&1, 0), Lookup::Hit(10)));
        assert!(matches!(s.get(&3, 0), Lookup::Hit(30)));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn overwriting_a_key_does_not_evict_and_refreshes_it() {
        let s = bounded(2);
        s.insert(1, 10, 0);
        s.insert(2, 20, 0);
        let (previous, evicted) = s.insert(1, 11, 0);
        assert_eq!((previous, evicted), (Some(10), 0));
        s.insert(3, 30, 0);
        assert!(matches!(s.get(&2, 0), Lookup::Miss));
        assert!(matches!(s.get(&1, 0), Lookup::Hit(11)));
    }

    #[test]
    fn expired_entries_are_not_served_or_saved() {
        let s: Shards<u32, u32, Tracked> = Shards::new(
            4,
            Hasher::default(),
            Limits {
                ttl: Some(Duration::from_millis(100)),
                capacity: None,
                journal: false,
            },
        );
        s.insert(1, 10, 1_000);
        assert!(matches!(s.get(&1, 1_099), Lookup::Hit(10)));
        assert!(matches!(s.get(&1, 1_100), Lookup::Miss));
        assert!(!s.contains_key(&1, 1_100));
        assert!(s.snapshot(1_100).is_empty());
        assert_eq!(s.snapshot(1_050).len(), 1);
    }

    #[test]
    fn a_locked_shard_fits_in_128_bytes() {
        // `default_shard_count` gives every cache dozens of shards: each must stay small.
        assert_eq!(std::mem::size_of::<LockedShard<u64, u64, ()>>(), 128);
        assert_eq!(
            std::mem::size_of::<LockedShard<String, Vec<u8>, Tracked>>(),
            128
        );
    }

    fn plain(shard_count: usize) -> Shards<u32, u32, ()> {
        Shards::new(shard_count, Hasher::default(), Limits::default())
    }

    fn sorted_keys(rows: &[(u32, u32, u64)]) -> Vec<u32> {
        let mut keys: Vec<u32> = rows.iter().map(|r| r.0).collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn a_shard_larger_than_a_chunk_is_copied_whole_across_many_holds() {
        let s = plain(1);
        s.extend_for_test(0..5_000);
        let mut holds = 0;
        let mut rows = Vec::new();
        infallible(s.copy_shard_between(0, 0, &mut rows, |_| {}, || holds += 1));
        assert!(holds >= 5_000 / CHUNK_BUCKETS, "{holds} holds");
        assert_eq!(sorted_keys(&rows), (0..5_000).collect::<Vec<_>>());
    }

    #[test]
    fn writers_get_the_lock_between_chunks_and_untouched_entries_are_all_copied() {
        let s = plain(1);
        s.extend_for_test(0..1_000);
        s.remove(&999, 0); // leaves room, so the inserts below do not grow the table
        let mut rows = Vec::new();
        let mut step = 0;
        infallible(s.copy_shard_between(
            0,
            0,
            &mut rows,
            |_| {},
            || {
                // A write lock here would deadlock if the copy still held the read lock.
                s.insert(5_000 + step, 0, 0);
                s.remove(&(5_000 + step), 0);
                step += 1;
            },
        ));
        assert!(step > 0);
        assert_eq!(sorted_keys(&rows), (0..999).collect::<Vec<_>>());
    }

    #[test]
    fn a_table_that_grows_mid_copy_is_copied_again_without_duplicates_or_gaps() {
        let s = plain(1);
        s.extend_for_test(0..1_000);
        let layout = s.read(0).layout;
        let mut rows = Vec::new();
        let mut grown = false;
        infallible(s.copy_shard_between(
            0,
            0,
            &mut rows,
            |_| {},
            || {
                // Once, after the first chunk: enough new keys to grow the table, which moves
                // every entry to a new bucket.
                if !std::mem::replace(&mut grown, true) {
                    s.extend_for_test(10_000..12_000);
                }
            },
        ));
        assert!(s.read(0).layout > layout, "the table did not grow");
        let keys = sorted_keys(&rows);
        let mut unique = keys.clone();
        unique.dedup();
        assert_eq!(keys, unique, "a key was copied twice");
        assert!(
            (0..1_000).all(|k| keys.binary_search(&k).is_ok()),
            "an entry was missed"
        );
    }

    #[test]
    fn plain_entries_cost_nothing_extra() {
        assert_eq!(
            std::mem::size_of::<Entry<u64, u64, ()>>(),
            std::mem::size_of::<(u64, u64)>()
        );
    }
}
