//! The in-memory map behind a cache: a fixed number of shards, each a `RwLock` around a hash
//! table, so that hits only take a shared lock on one shard and misses on different keys rarely
//! meet. A key is hashed once: the high bits of its hash pick the shard, the same hash finds the
//! entry in the shard's table.
//!
//! Entries carry a `Meta`: `()` for plain caches (no cost at all) or [`Tracked`] for caches
//! with a time-to-live or a capacity, which need an insertion time, an id and a use counter. A
//! hit on any cache takes only its shard's read lock: what a bounded cache records of the use is
//! a counter in the entry, what an expiring cache reads is the coarse clock (`clock.rs`).
//! Eviction (`policy.rs`) and expiry (`expiry.rs`) do their work under the write lock of an
//! insert.

mod copy;
mod expiry;
mod lookup;
mod policy;
mod sync;

use std::collections::HashSet;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use hashbrown::HashTable;

use crate::flight::{Begin, InFlight, Reentrant};
use crate::query::Query;
use hashbrown::hash_table::Entry as Slot;

#[cfg(test)]
pub(crate) use copy::stamped_rows;
pub(crate) use copy::{Mark, RowMeta, Sink, infallible};
use lookup::OnHit;
pub(crate) use lookup::{Held, Lookup};
use policy::Policy;

/// The hasher of every cache map: fast, and seeded per process so keys cannot be chosen to
/// collide (unlike a fixed-seed hasher).
pub(crate) type Hasher = foldhash::fast::RandomState;

/// Per-entry bookkeeping, chosen once per cache.
pub(crate) trait Meta: Send + Sync + 'static {
    /// Whether entries carry a stamp and an id: a cache without them has neither a
    /// time-to-live nor a capacity, which its lookups then need not check.
    const TRACKED: bool;
    fn stamped(now_ms: u64, tick: u32) -> Self;
    fn stamp_ms(&self) -> u64;
    /// The entry's id in its shard, which the eviction and expiry queues name it by.
    fn tick(&self) -> u32;
    fn tracked(&self) -> Option<&Tracked>;
    fn tracked_mut(&mut self) -> Option<&mut Tracked>;
    /// What a stored row of the entry carries: its stamp and its use count.
    fn row_meta(&self) -> RowMeta {
        RowMeta {
            stamp_ms: self.stamp_ms(),
            uses: self
                .tracked()
                .map_or(0, |tracked| tracked.uses.load(Ordering::Relaxed)),
        }
    }
}

impl Meta for () {
    const TRACKED: bool = false;
    fn stamped(_: u64, _: u32) -> Self {}
    fn stamp_ms(&self) -> u64 {
        0
    }
    fn tick(&self) -> u32 {
        0
    }
    fn tracked(&self) -> Option<&Tracked> {
        None
    }
    fn tracked_mut(&mut self) -> Option<&mut Tracked> {
        None
    }
}

/// Bookkeeping of caches with a TTL or a capacity. The stamp and the use counter are atomics
/// because a hit, under the shard's read lock, may move them.
pub(crate) struct Tracked {
    /// When the entry was inserted (or, with sliding expiry, last read), in milliseconds since
    /// the Unix epoch by the cache's clock.
    stamp_ms: AtomicU64,
    /// The entry's id in its shard, kept when the value is overwritten. Ids wrap after 2^32
    /// inserts into one shard; queues name an entry by its key's hash and its id together, so
    /// an old name could only be mistaken for a new entry with the same 64-bit hash and id.
    /// 32 bits keep a `u64 → u64` entry at 32 bytes.
    tick: u32,
    /// Uses since the eviction policy last looked, up to [`policy::MAX_USES`].
    uses: AtomicU8,
    /// Whether the entry is in the main queue (else the small one) of a bounded shard.
    in_main: bool,
}

impl Meta for Tracked {
    const TRACKED: bool = true;
    fn stamped(now_ms: u64, tick: u32) -> Self {
        Tracked {
            stamp_ms: AtomicU64::new(now_ms),
            tick,
            uses: AtomicU8::new(0),
            in_main: false,
        }
    }
    #[inline]
    fn stamp_ms(&self) -> u64 {
        self.stamp_ms.load(Ordering::Relaxed)
    }
    fn tick(&self) -> u32 {
        self.tick
    }
    #[inline]
    fn tracked(&self) -> Option<&Tracked> {
        Some(self)
    }
    fn tracked_mut(&mut self) -> Option<&mut Tracked> {
        Some(self)
    }
}

pub(crate) struct Entry<K, V, M> {
    key: K,
    value: V,
    meta: M,
}

pub(crate) struct Shard<K, V, M> {
    table: HashTable<Entry<K, V, M>>,
    /// Keys inserted or removed since the contents were last in step with the file, for the
    /// merge with other processes' saves (see `sync.rs`). `None` when not tracked. Behind its
    /// own lock so that a save can drain it under the shard's read lock: lookups go on while a
    /// save copies the shard. Boxed so that a locked shard fits in 128 bytes (see
    /// [`default_shard_count`]).
    journal: Option<Box<Mutex<HashSet<K, Hasher>>>>,
    /// Ids, eviction and expiry queues of a tracked cache; `None` for plain caches. Boxed, as
    /// the journal.
    policy: Option<Box<Policy>>,
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

/// Limits of a tracked cache.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    /// Entries older than this are not served.
    pub ttl: Option<Duration>,
    /// Whether a hit restarts the entry's time-to-live (sliding expiry).
    pub refresh: bool,
    /// Whether expired entries stay in memory for one more time-to-live, as fallbacks for a
    /// computation that fails ([`Shards::get_expired`]).
    pub keep_expired: bool,
    /// Most entries the cache holds, split between its shards (see [`Shards::capacity_of`]).
    pub capacity: Option<usize>,
    /// Whether to journal the keys changed since the last sync with the file.
    pub journal: bool,
}

pub(crate) struct Shards<K, V, M> {
    shards: Box<[LockedShard<K, V, M>]>,
    /// The shard count less one (a power of two less one): kept rather than computed on
    /// every lookup.
    index_mask: usize,
    hasher: Hasher,
    limits: Limits,
    on_hit: OnHit,
    /// The time-to-live in milliseconds, `u64::MAX` without one.
    ttl_ms: u64,
    /// How old an entry is when it leaves memory: the time-to-live, or twice it for a cache
    /// that keeps expired entries.
    removal_ms: u64,
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

/// Shard `index`'s share of `capacity` over `shards` shards; `usize::MAX` when unbounded.
fn capacity_share(capacity: Option<usize>, shards: usize, index: usize) -> usize {
    match capacity {
        Some(c) => c / shards + usize::from(index < c % shards),
        None => usize::MAX,
    }
}

impl<K, V, M> Shards<K, V, M>
where
    K: Hash + Eq + Clone,
    V: Clone,
    M: Meta,
{
    pub(crate) fn new(shard_count: usize, hasher: Hasher, limits: Limits) -> Self {
        debug_assert!(shard_count.is_power_of_two());
        let share = |index| capacity_share(limits.capacity, shard_count, index);
        let shards = (0..shard_count)
            .map(|i| {
                Padded(RwLock::new(Shard {
                    table: HashTable::new(),
                    journal: limits
                        .journal
                        .then(|| Box::new(Mutex::new(HashSet::with_hasher(hasher.clone())))),
                    policy: M::TRACKED.then(|| Box::new(Policy::new(limits, share(i)))),
                    flights: HashTable::new(),
                    layout: 0,
                }))
            })
            .collect();
        let ttl_ms = limits
            .ttl
            .map_or(u64::MAX, |ttl| ttl.as_millis().min(u64::MAX.into()) as u64);
        Shards {
            index_mask: shard_count - 1,
            shards,
            hasher,
            on_hit: OnHit::of(&limits),
            limits,
            ttl_ms,
            removal_ms: if limits.keep_expired {
                ttl_ms.saturating_mul(2)
            } else {
                ttl_ms
            },
        }
    }

    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    fn index_of(&self, hash: u64) -> usize {
        // The high bits: the low ones pick the bucket inside the shard's table.
        (hash >> 32) as usize & self.index_mask
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

    /// Whether an entry stamped `stamp_ms` is past its time-to-live at `now_ms`.
    #[inline]
    fn expired(&self, stamp_ms: u64, now_ms: u64) -> bool {
        // A stamp ahead of the clock (set back, or a coarse time behind an exact one) is live.
        now_ms
            .checked_sub(stamp_ms)
            .is_some_and(|age| age >= self.ttl_ms)
    }

    /// Whether a row loaded or merged from a file is too old to take in at all.
    fn is_dropped_row(&self, stamp_ms: u64, now_ms: u64) -> bool {
        M::TRACKED && self.limits.ttl.is_some() && self.removable(stamp_ms, now_ms)
    }

    /// Whether an entry stamped `stamp_ms` leaves memory at `now_ms`.
    fn removable(&self, stamp_ms: u64, now_ms: u64) -> bool {
        now_ms.saturating_sub(stamp_ms) >= self.removal_ms
    }

    #[inline]
    fn is_live(&self, meta: &M, now_ms: u64) -> bool {
        !M::TRACKED || self.limits.ttl.is_none() || !self.expired(meta.stamp_ms(), now_ms)
    }

    /// Most entries shard `index` holds (least valuable ones are evicted beyond it): its
    /// share of the cache's capacity, the shares adding up to exactly that capacity.
    fn capacity_of(&self, index: usize) -> usize {
        capacity_share(self.limits.capacity, self.shards.len(), index)
    }

    /// Inserts and returns the previous live value, and how many entries were evicted.
    pub(crate) fn insert(&self, key: K, value: V, now_ms: u64) -> (Option<V>, usize) {
        let hash = self.hash(&key);
        let index = self.index_of(hash);
        let mut shard = self.write(index);
        if let Some(journal) = shard.journal_mut() {
            journal.insert(key.clone());
        }
        self.before_insert(&mut shard, index, now_ms);
        self.insert_locked(
            &mut shard,
            hash,
            key,
            value,
            RowMeta::stamped(now_ms),
            now_ms,
        )
    }

    /// What an insert does first under a tracked shard's write lock: drop its expired entries
    /// (and now and then its neighbour's), so they neither take room nor count.
    fn before_insert(&self, shard: &mut Shard<K, V, M>, index: usize, now_ms: u64) {
        if M::TRACKED {
            self.expire_locked(shard, now_ms);
            self.sweep_neighbour(shard, index, now_ms);
        }
    }

    /// Inserts `key` stamped `row.stamp_ms` into a locked shard, then evicts beyond the
    /// shard's capacity. An overwritten entry keeps its id and its place in the eviction
    /// queues, and counts as a use; a new one starts with `row.uses` (a stored row's count).
    fn insert_locked(
        &self,
        shard: &mut Shard<K, V, M>,
        hash: u64,
        key: K,
        value: V,
        row: RowMeta,
        now_ms: u64,
    ) -> (Option<V>, usize) {
        let stamp_ms = row.stamp_ms;
        let index = self.index_of(hash);
        if shard.table.len() == shard.table.capacity() {
            // `entry` reserves room before it looks: with no room left, the table grows or
            // rehashes in place, moving entries, even when the key is already there.
            shard.layout += 1;
        }
        let rehash = |e: &Entry<K, V, M>| self.hash(&e.key);
        let Shard { table, policy, .. } = shard;
        let previous = match table.entry(hash, |e| e.key == key, rehash) {
            Slot::Occupied(mut slot) => {
                let entry = slot.get_mut();
                let live = self.is_live(&entry.meta, now_ms);
                let old = std::mem::replace(&mut entry.value, value);
                if let (Some(tracked), Some(policy)) = (entry.meta.tracked_mut(), policy) {
                    *tracked.stamp_ms.get_mut() = stamp_ms;
                    let uses = tracked.uses.get_mut();
                    *uses = (*uses + 1).max(row.uses).min(policy::MAX_USES);
                    policy.restamped(hash, tracked.tick, stamp_ms);
                }
                live.then_some(old)
            }
            Slot::Vacant(slot) => {
                let mut meta = M::stamped(stamp_ms, 0);
                if let (Some(tracked), Some(policy)) = (meta.tracked_mut(), policy) {
                    *tracked.uses.get_mut() = row.uses.min(policy::MAX_USES);
                    policy.admit(hash, tracked, stamp_ms);
                }
                slot.insert(Entry { key, value, meta });
                None
            }
        };
        let evicted = match self.limits.capacity {
            Some(_) if M::TRACKED => self.evict_locked(shard, self.capacity_of(index)),
            _ => 0,
        };
        (previous, evicted)
    }

    /// Removes `key` from a locked shard's table and from what its policy counts.
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
        if let (Some(tracked), Some(policy)) = (removed.meta.tracked(), &mut shard.policy) {
            policy.forget(tracked);
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
        let index = self.index_of(hash);
        let mut guard = self.write(index);
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
            self.before_insert(shard, index, now_ms);
            evicted = self
                .insert_locked(shard, hash, key, value, RowMeta::stamped(now_ms), now_ms)
                .1;
        }
        (in_flight, evicted)
    }

    /// Live entries held: expired ones are dropped first (see [`Shards::purge_expired_shard`]).
    /// A cache that keeps expired entries counts its live ones one by one.
    pub(crate) fn len(&self, now_ms: u64) -> usize {
        (0..self.shards.len())
            .map(|i| {
                self.purge_expired_shard(i, now_ms);
                let shard = self.read(i);
                if self.limits.keep_expired {
                    let live = |e: &&Entry<K, V, M>| self.is_live(&e.meta, now_ms);
                    shard.table.iter().filter(live).count()
                } else {
                    shard.table.len()
                }
            })
            .sum()
    }

    /// Empties every shard; returns how many entries were dropped.
    pub(crate) fn clear(&self) -> usize {
        let mut dropped = 0;
        for i in 0..self.shards.len() {
            let mut shard = self.write(i);
            dropped += shard.table.len();
            shard.table.clear();
            if let Some(policy) = &mut shard.policy {
                policy.clear();
            }
            shard.layout += 1;
            // A clear replaces the whole contents; the caller records that, not each key.
            if let Some(journal) = shard.journal_mut() {
                journal.clear();
            }
        }
        dropped
    }

    /// Replaces the whole contents with `rows` (key, value, insertion stamp; a stamp of 0 means
    /// "now"). Rows go in oldest first, so that a bounded cache given more rows than its
    /// capacity keeps the newest. Returns how many entries were dropped by capacity.
    pub(crate) fn replace_all(&self, rows: Vec<(K, V, RowMeta)>, now_ms: u64) -> usize {
        let count = self.shards.len();
        let mut buckets: Vec<Vec<(u64, K, V, RowMeta)>> = (0..count).map(|_| Vec::new()).collect();
        for (key, value, mut row) in rows {
            if row.stamp_ms == 0 {
                row.stamp_ms = now_ms;
            }
            if self.is_dropped_row(row.stamp_ms, now_ms) {
                continue;
            }
            let hash = self.hash(&key);
            buckets[self.index_of(hash)].push((hash, key, value, row));
        }
        let mut evicted = 0;
        for (i, mut bucket) in buckets.into_iter().enumerate() {
            if M::TRACKED {
                bucket.sort_by_key(|row| row.3.stamp_ms);
            }
            let mut shard = self.write(i);
            shard.table.clear();
            if let Some(policy) = &mut shard.policy {
                policy.clear();
            }
            shard.layout += 1;
            // Memory now equals what was loaded: nothing is changed relative to it.
            if let Some(journal) = shard.journal_mut() {
                journal.clear();
            }
            shard
                .table
                .reserve(bucket.len(), |e| self.hasher.hash_one(&e.key));
            for (hash, key, value, row) in bucket {
                evicted += self
                    .insert_locked(&mut shard, hash, key, value, row, now_ms)
                    .1;
            }
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_locked_shard_fits_in_128_bytes() {
        // `default_shard_count` gives every cache dozens of shards: each must stay small.
        assert_eq!(std::mem::size_of::<LockedShard<u64, u64, ()>>(), 128);
        assert_eq!(
            std::mem::size_of::<LockedShard<String, Vec<u8>, Tracked>>(),
            128
        );
    }

    #[test]
    fn plain_entries_cost_nothing_extra_and_tracked_ones_16_bytes() {
        assert_eq!(
            std::mem::size_of::<Entry<u64, u64, ()>>(),
            std::mem::size_of::<(u64, u64)>()
        );
        // Hits on a bounded cache read more memory than on a plain one: keep it small.
        assert_eq!(std::mem::size_of::<Entry<u64, u64, Tracked>>(), 32);
    }
}
