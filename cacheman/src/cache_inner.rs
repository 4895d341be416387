//! Everything a cache is (`CacheInner`, shared by its handles and its manager): its maps, and
//! the core of a lookup, a store and a miss that the handle's API is made of.

use crate::shards::RowMeta;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::autosync::SaveState;
use crate::cache_miss::Leader;
use crate::clock::{CacheTime, Clock, unix_millis};
use crate::flight::{Begin, Reentrant};
use crate::hooks::Hooks;
use crate::options::CacheOptions;
use crate::query::Query;
use crate::shards::{Lookup, Shards, Tracked};
use crate::stats::Counters;
use crate::store::Store;

/// What [`CacheInner::find_counted`] found.
pub(crate) enum Found<V> {
    /// A hit, counted.
    Hit(V),
    /// A hit, counted, inside a computation that records what it reads: the entry is to be
    /// read again and recorded ([`CacheInner::read_in_computation`]).
    Recording(V),
    /// Not in the map: [`CacheInner::missed`] counts it, or serves an entry set aside.
    Missing,
}

pub(crate) enum Maps<K, V> {
    /// No time-to-live, no capacity: entries carry nothing but their value.
    Plain(Shards<K, V, ()>),
    Tracked(Shards<K, V, Tracked>),
}

/// Runs `$body` with `$s` bound to the shards and `$now` to the time in Unix milliseconds,
/// which is only read from the clock for tracked caches.
macro_rules! on_maps {
    ($inner:expr, $s:ident, $now:ident => $body:expr) => {
        match &$inner.maps {
            $crate::cache_inner::Maps::Plain($s) => {
                let $now = 0;
                $body
            }
            $crate::cache_inner::Maps::Tracked($s) => {
                let $now = $inner.now_ms();
                $body
            }
        }
    };
}
pub(crate) use on_maps;

/// Everything a cache is; shared by its handles and its manager.
pub(crate) struct CacheInner<K, V> {
    pub(crate) name: String,
    pub(crate) maps: Maps<K, V>,
    pub(crate) counters: Counters,
    pub(crate) hooks: RwLock<Hooks<K, V>>,
    pub(crate) store: Option<Box<dyn Store<K, V>>>,
    pub(crate) options: CacheOptions,
    pub(crate) clock: Arc<dyn Clock>,
    /// The clock as lookups read it (the coarse clock for expiry on the system's time).
    pub(crate) time: CacheTime,
    /// Bumped by every invalidation; saved in the file header.
    pub(crate) epoch: AtomicU64,
    /// How many of the changes counted in `counters` (inserts, removals, clears,
    /// invalidations) are in the file: the rest are pending. Counting per thread and settling
    /// here keeps a shared write off every insert. Negative when more is pending than was ever
    /// counted (built contents not saved yet).
    pub(crate) settled: AtomicI64,
    /// `clear()` was called since the last save: the next save does not merge in entries
    /// other processes saved before it.
    pub(crate) cleared: AtomicBool,
    /// Serializes saves, loads and invalidations of this cache, so a save that started before an
    /// invalidation can never write the old contents back after it.
    pub(crate) save_lock: Mutex<()>,
    /// Save points and the time of the last save.
    pub(crate) autosync: SaveState,
    /// The background compaction of the store's journal, if one runs.
    pub(crate) compaction: crate::lifecycle::Compaction<K, V>,
    /// The cache's place in its manager's entry graph (set once, at registration).
    pub(crate) deps: OnceLock<crate::deps::CacheLink>,
    /// The keys of entries that have a node in the graph, by stable hash: how the graph's
    /// invalidations (which know hashes only) find the entries to take off.
    pub(crate) recorded_keys: Mutex<crate::deps::HashMap<u64, K>>,
    /// How many recorded keys make the next insert look for keys whose entries are gone.
    pub(crate) prune_at: std::sync::atomic::AtomicUsize,
    /// Entries set aside because something they read changed: served again without running
    /// their body if their inputs turn out unchanged (see `cache_deps.rs`).
    pub(crate) parked: Mutex<crate::deps::HashMap<u64, (K, V)>>,
    /// Whether `parked` may hold anything: the only check a miss makes for it.
    pub(crate) has_parked: AtomicBool,
    /// Makes "check that nothing changed, then store" one step against what takes entries
    /// off the map: a computed (or set-aside) value is checked and stored under a read lock,
    /// and entries are taken off (and the cache invalidated) under the write lock, so a take-off
    /// can never fall between a check and its store (see `cache_deps.rs`).
    pub(crate) landing: RwLock<()>,
    /// Sections that store a value and give its node a stamp (landings, set-aside entries
    /// served again, inserts of entries with nodes) started and ended: a read inside a
    /// computation that overlapped one may have taken its value before and its stamp after,
    /// and records the stamp of the value itself instead (see `cache_deps.rs`).
    pub(crate) sections_started: AtomicU64,
    pub(crate) sections_ended: AtomicU64,
}

impl<K, V> CacheInner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(
        name: &str,
        options: CacheOptions,
        clock: Arc<dyn Clock>,
        hooks: Hooks<K, V>,
        store: Option<Box<dyn Store<K, V>>>,
    ) -> Self {
        let hasher = crate::shards::Hasher::default();
        let mut shard_count = crate::shards::default_shard_count();
        // Files may be saved by other processes too: journal changes to merge with theirs.
        // A shared store takes each change at once: nothing to merge.
        let journal = store.as_ref().is_some_and(|store| store.shared().is_none());
        let maps = if options.ttl.is_none() && options.capacity.is_none() {
            let limits = crate::shards::Limits {
                journal,
                ..Default::default()
            };
            Maps::Plain(Shards::new(shard_count, hasher.clone(), limits))
        } else {
            // Small bounded caches keep one exact recency order (see `CacheOptions::capacity`).
            if let Some(capacity) = options.capacity {
                while shard_count > 1 && capacity / shard_count < 512 {
                    shard_count /= 2;
                }
            }
            let limits = crate::shards::Limits {
                ttl: options.ttl,
                refresh: options.refresh,
                keep_expired: options.keep_expired,
                capacity: options.capacity,
                journal,
            };
            Maps::Tracked(Shards::new(shard_count, hasher.clone(), limits))
        };
        let autosync = SaveState::new(
            options.autosync.clone().unwrap_or_default(),
            unix_millis(clock.now()),
        );
        CacheInner {
            name: name.to_owned(),
            maps,
            counters: Counters::new(),
            hooks: RwLock::new(hooks),
            store,
            time: CacheTime::new(clock.clone(), options.ttl.is_some()),
            options,
            clock,
            epoch: AtomicU64::new(0),
            settled: AtomicI64::new(0),
            cleared: AtomicBool::new(false),
            save_lock: Mutex::new(()),
            autosync,
            compaction: Default::default(),
            deps: OnceLock::new(),
            recorded_keys: Mutex::default(),
            prune_at: std::sync::atomic::AtomicUsize::new(crate::cache_recorded::MIN_PRUNE_AT),
            parked: Mutex::default(),
            has_parked: AtomicBool::new(false),
            landing: RwLock::new(()),
            sections_started: AtomicU64::new(0),
            sections_ended: AtomicU64::new(0),
        }
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.time.now_ms()
    }

    pub(crate) fn note_changes(&self, n: u64) {
        if n > 0 {
            self.counters.changed(n);
        }
    }

    /// Changes not yet in the file (none on a shared store: it took each as it came).
    pub(crate) fn pending_changes(&self) -> u64 {
        if self.shared().is_some() {
            return 0;
        }
        let settled = self.settled.load(Ordering::Acquire);
        (self.counters.changes_made() as i64 - settled).max(0) as u64
    }

    /// Marks the changes up to `made` (a `changes_made()` read before a snapshot) as saved;
    /// changes counted since stay pending.
    pub(crate) fn settle(&self, made: u64) {
        self.settled.fetch_max(made as i64, Ordering::AcqRel);
    }

    /// Leaves exactly `pending` changes pending (a load: none; a build: what it built).
    pub(crate) fn set_pending(&self, pending: u64) {
        let made = self.counters.changes_made() as i64;
        self.settled.store(made - pending as i64, Ordering::Release);
    }

    /// A lookup that counts a hit or a miss. Inside the computation of another entry, the
    /// entry read is recorded as one of its inputs.
    #[inline(always)]
    pub(crate) fn lookup<Q: Query<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        match self.find_counted(key) {
            Found::Hit(value) => Some(value),
            Found::Recording(value) => Some(self.read_in_computation(key, value)),
            Found::Missing => self.missed(key),
        }
    }

    /// The hit path of [`CacheInner::lookup`], which counts a hit; what is left to do for
    /// the other outcomes is the caller's, out of line, so that a caller whose key is a
    /// temporary (`cached_fn::lookup`'s probe) can move it there and keep it in registers.
    #[inline(always)]
    pub(crate) fn find_counted<Q: Query<K> + ?Sized>(&self, key: &Q) -> Found<V> {
        let found = match &self.maps {
            Maps::Plain(s) => s.get(key, 0),
            // The coarse clock: no clock read on a hit (`clock.rs`).
            Maps::Tracked(s) => s.get_at(key, || self.time.lookup_ms()),
        };
        match found {
            Lookup::Hit(value) if self.counters.hit() => Found::Recording(value),
            Lookup::Hit(value) => Found::Hit(value),
            Lookup::Miss => Found::Missing,
        }
    }

    /// A key not in the map: an entry set aside may still be served once its inputs are
    /// checked.
    #[cold]
    #[inline(never)]
    pub(crate) fn missed<Q: Query<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        if self.has_parked.load(Ordering::Acquire)
            && let Some(value) = self.unpark(key)
        {
            if self.counters.hit() {
                self.note_read(key, &value, self.read_mark());
            }
            return Some(value);
        }
        if let Some(shared) = self.shared()
            && let Some(value) = self.fetch_shared(shared, key)
        {
            if self.counters.hit() {
                self.note_read(key, &value, self.read_mark());
            }
            return Some(value);
        }
        self.counters.miss();
        None
    }

    pub(crate) fn store(&self, key: K, value: V) -> Option<V> {
        // The graph learns of the new value after the map holds it: a computation that reads
        // the new value in between records the old stamp and is found stale at once (the
        // other order would let it record the new stamp with the old value).
        let by_hand = self
            .deps
            .get()
            .filter(|link| link.watched())
            .and_then(|link| Some((link, self.stamp_by_hand(link, &key, &value)?)));
        let (previous, evicted) = match by_hand {
            // An entry set aside before is older than this value: never served again.
            Some((link, (hash, stamp))) => {
                let _section = self.section();
                let stored = {
                    let _landing = self.landing();
                    let stored = on_maps!(self, s, now => s.insert(key, value, now));
                    self.drop_parked(hash);
                    stored
                };
                link.graph.replaced((link.id, hash), stamp);
                stored
            }
            None => on_maps!(self, s, now => s.insert(key, value, now)),
        };
        self.counters.inserted(evicted);
        previous
    }

    /// The guard of a caller that leads the computation of `key`.
    pub(crate) fn leader(&self, key: K) -> Leader<'_, K, V> {
        Leader::new(self, key)
    }

    /// Starts a miss: the value if it appeared meanwhile, a flight to wait on, or the lead.
    pub(crate) fn begin_miss(&self, key: &K, sync_caller: bool) -> Result<Begin<V>, Reentrant> {
        on_maps!(self, s, now => s.begin_miss(key, now, sync_caller))
    }

    /// Ends a miss: stores a computed value, unless the cache was invalidated while it was
    /// being computed (a value derived from data that was since invalidated must not outlive
    /// the invalidation), and hands the outcome to the waiters.
    pub(crate) fn finish_miss(&self, key: K, value: Option<&V>, epoch_before: u64, storable: bool) {
        let current =
            storable && self.epoch.load(Ordering::Acquire) == epoch_before && self.keeps_local();
        let store = value.filter(|_| current).cloned();
        let stored = store.is_some();
        let (in_flight, evicted) = on_maps!(self, s, now => s.finish_miss(key, store, now));
        if stored {
            self.counters.inserted(evicted);
        }
        if let Some(in_flight) = in_flight {
            // A value not stored may derive from what changed before a waiter looked: the
            // waiters try again (one of them leads a new computation).
            in_flight.land(value.filter(|_| stored));
        }
    }

    pub(crate) fn snapshot_rows(&self) -> Vec<(K, V, RowMeta)> {
        on_maps!(self, s, now => s.snapshot(now))
    }
}
