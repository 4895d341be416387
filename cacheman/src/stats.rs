//! Counters of what a cache did. Hits, misses and inserts are counted in per-thread slots, so the
//! hit path does no locked read-modify-write and threads never write to the same cache line.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// What a cache did since it was registered: a snapshot of its counters.
///
/// ```
/// use cacheman::CacheManager;
///
/// let dir = tempfile::tempdir().unwrap();
/// let manager = CacheManager::new("docs", dir.path());
/// let cache = manager.register_cache::<u32, u32>("squares").unwrap();
/// cache.insert(3, 9);
/// assert_eq!(cache.get(&3), Some(9));
/// assert_eq!(cache.get(&4), None);
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 1, 1));
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups that found a value.
    pub hits: u64,
    /// Lookups that found nothing (or only an expired entry).
    pub misses: u64,
    /// Values stored by `insert`, `extend` or a computed miss.
    pub inserts: u64,
    /// Entries dropped to stay within the capacity.
    pub evictions: u64,
    /// Times the contents were loaded (from the file, a loader or a builder).
    pub loads: u64,
    /// Times the contents were saved.
    pub saves: u64,
    /// Operations on a shared store (Redis) that failed: the server was down, slow or
    /// refused. Each is also logged; the values were computed without the store.
    pub store_errors: u64,
    /// Entries held when the statistics were taken (set by [`Cache::stats`](crate::Cache::stats);
    /// 0 in statistics not taken from a cache).
    pub entries: u64,
}

impl CacheStats {
    /// Hits divided by lookups, or 0 when there were none.
    ///
    /// ```
    /// let stats = cacheman::CacheStats::default();
    /// assert_eq!(stats.hit_ratio(), 0.0);
    /// ```
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}

/// Counters of one thread (or of every thread without a slot of its own), on a cache line of
/// their own so two threads never write to the same line.
#[repr(align(128))]
#[derive(Default)]
struct Slot {
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    /// Inserts, removals, clears and invalidations, for autosync (not part of `CacheStats`).
    changes: AtomicU64,
}

impl Slot {
    #[inline]
    fn counter(&self, event: Event) -> &AtomicU64 {
        match event {
            Event::Hit => &self.hits,
            Event::Miss => &self.misses,
            Event::Insert => &self.inserts,
            Event::Change => &self.changes,
        }
    }

    fn sum_into(&self, stats: &mut CacheStats) {
        stats.hits += self.hits.load(Ordering::Relaxed);
        stats.misses += self.misses.load(Ordering::Relaxed);
        stats.inserts += self.inserts.load(Ordering::Relaxed);
    }
}

/// The counters of a cache. Hits, misses and inserts are counted per thread: a thread owns one
/// slot (see [`thread_slot`]) and is its only writer, so counting is a plain load and store with
/// no locked read-modify-write on the hit path; threads beyond the owned slots share `shared`,
/// with atomic adds.
pub(crate) struct Counters {
    owned: Box<[Slot]>,
    shared: Slot,
    evictions: AtomicU64,
    loads: AtomicU64,
    saves: AtomicU64,
}

/// Which counter of a [`Slot`] to bump.
#[derive(Clone, Copy)]
enum Event {
    Hit,
    Miss,
    Insert,
    Change,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Counters {
            owned: (0..owned_slots()).map(|_| Slot::default()).collect(),
            shared: Slot::default(),
            evictions: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            saves: AtomicU64::new(0),
        }
    }

    #[inline]
    fn count(&self, event: Event, n: u64) {
        self.count_each(&[event], n);
    }

    /// Adds `n` to each of `events`' counters, finding this thread's slot once.
    #[inline]
    fn count_each(&self, events: &[Event], n: u64) {
        self.count_each_in(SLOT.with(Cell::get), events, n);
    }

    /// [`Counters::count_each`] with this thread's word already read.
    #[inline]
    fn count_each_in(&self, word: usize, events: &[Event], n: u64) {
        // The word is the slot's index plus one, so that "no slot yet" (0) wraps to an index
        // no slot has, and so does a word with the recording bit (the top one): one bounds
        // check serves all three.
        match self.owned.get(word.wrapping_sub(1)) {
            Some(slot) => add_owned(slot, events, n),
            None => self.count_elsewhere(word, events, n),
        }
    }

    /// Counts in this thread's slot while it records, in a slot leased now, or in the shared
    /// slot (too many threads, or thread-locals being torn down).
    #[cold]
    #[inline(never)]
    fn count_elsewhere(&self, word: usize, events: &[Event], n: u64) {
        let leased = match word & !RECORDING {
            NO_SLOT => lease_slot(),
            index => Some(index - 1),
        };
        match leased.and_then(|i| self.owned.get(i)) {
            Some(slot) => add_owned(slot, events, n),
            None => {
                for &event in events {
                    // Release: see `add_owned`.
                    self.shared.counter(event).fetch_add(n, Ordering::Release);
                }
            }
        }
    }

    /// Counts `n` changes (inserts, removals, clears, invalidations).
    #[inline]
    pub(crate) fn changed(&self, n: u64) {
        self.count(Event::Change, n);
    }

    /// Every change counted so far; saves settle them up to a total (see `CacheInner`).
    pub(crate) fn changes_made(&self) -> u64 {
        let sum = |slot: &Slot| slot.changes.load(Ordering::Acquire);
        sum(&self.shared) + self.owned.iter().map(sum).sum::<u64>()
    }

    /// Counts a hit, and returns whether a computation records its reads on this thread
    /// ([`set_recording`]): one thread-local read serves both.
    #[inline]
    pub(crate) fn hit(&self) -> bool {
        let word = SLOT.with(Cell::get);
        match self.owned.get(word.wrapping_sub(1)) {
            // A word that indexes a slot has no recording bit: the hit path tests nothing more.
            Some(slot) => {
                add_owned(slot, &[Event::Hit], 1);
                false
            }
            None => self.hit_elsewhere(word),
        }
    }

    /// [`Counters::hit`] on a thread that records, or without a slot of its own yet.
    #[cold]
    #[inline(never)]
    fn hit_elsewhere(&self, word: usize) -> bool {
        self.count_elsewhere(word, &[Event::Hit], 1);
        word & RECORDING != 0
    }
    #[inline]
    pub(crate) fn miss(&self) {
        self.count(Event::Miss, 1);
    }
    #[inline]
    /// Counts an insert, which is also a change.
    pub(crate) fn inserted(&self, evicted: usize) {
        self.count_each(&[Event::Insert, Event::Change], 1);
        if evicted > 0 {
            self.evicted(evicted);
        }
    }
    pub(crate) fn evicted(&self, n: usize) {
        self.evictions.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn loaded(&self) {
        self.loads.fetch_add(1, Ordering::Relaxed);
    }
    /// Loads so far (a background compaction checks that none replaced memory meanwhile).
    pub(crate) fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }
    pub(crate) fn saved(&self) {
        self.saves.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let mut stats = CacheStats {
            evictions: self.evictions.load(Ordering::Relaxed),
            loads: self.loads.load(Ordering::Relaxed),
            saves: self.saves.load(Ordering::Relaxed),
            ..CacheStats::default()
        };
        self.shared.sum_into(&mut stats);
        for slot in &self.owned {
            slot.sum_into(&mut stats);
        }
        stats
    }
}

/// How many threads at once own a slot in every cache's counters: a few per core, since threads
/// beyond the cores mostly wait anyway.
fn owned_slots() -> usize {
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        (cores * 4).clamp(8, 64)
    })
}

/// Slot indices not owned by a live thread. A thread takes the lowest free one and gives it back
/// when it exits, so programs that start many short-lived threads do not run out. The mutex also
/// orders the exited thread's last counts before the next owner's first.
static FREE_SLOTS: Mutex<FreeSlots> = Mutex::new(FreeSlots {
    next: 0,
    returned: Vec::new(),
});

struct FreeSlots {
    next: usize,
    returned: Vec<usize>,
}

/// A thread's ownership of a slot index, returned when the thread exits.
struct SlotLease(usize);

impl SlotLease {
    fn take() -> Self {
        let mut free = FREE_SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        // Lowest first, so live threads stay within the owned slots where they can.
        let index = match free.returned.iter().enumerate().min_by_key(|(_, i)| **i) {
            Some((at, _)) => free.returned.swap_remove(at),
            None => {
                free.next += 1;
                free.next - 1
            }
        };
        SlotLease(index)
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        // From here on this thread counts in the shared slot: the index goes to another thread.
        let _ = SLOT.try_with(|slot| slot.set(NO_SLOT | slot.get() & RECORDING));
        let mut free = FREE_SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        free.returned.push(self.0);
    }
}

/// Adds `n` to `events`' counters of this thread's own slot.
#[inline]
fn add_owned(slot: &Slot, events: &[Event], n: u64) {
    // Release: a save that reads a change's count (with Acquire) then locks a shard sees the
    // change itself, which was made before it was counted. This thread is the slot's only
    // writer: no other write can fall in between the load and the store.
    for &event in events {
        let counter = slot.counter(event);
        counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Release);
    }
}

/// The index part of `SLOT` (a slot's index plus one) before the lease is taken, and after
/// it is given back.
const NO_SLOT: usize = 0;

/// The bit of `SLOT` that says a computation records its reads on this thread: the top one,
/// so that a word with it set is no slot's index plus one (see [`Counters::hit`]).
const RECORDING: usize = 1 << (usize::BITS - 1);

thread_local! {
    /// The lease, taken on first use and given back at thread exit.
    static LEASE: SlotLease = SlotLease::take();
    /// The leased index plus one and the [`RECORDING`] bit, read on every count:
    /// a constant-initialized thread-local without a destructor costs a plain load, where
    /// `LEASE` needs an initialization check. A hit reads both in one load.
    static SLOT: Cell<usize> = const { Cell::new(NO_SLOT) };
}

/// Says whether a computation records its reads on this thread (`deps::frame` keeps it in
/// step with its stack of frames).
pub(crate) fn set_recording(on: bool) {
    SLOT.with(|slot| {
        let index = slot.get() & !RECORDING;
        slot.set(if on { index | RECORDING } else { index });
    });
}

/// Whether a computation records its reads on this thread (see [`set_recording`]).
#[inline]
pub(crate) fn recording() -> bool {
    SLOT.with(Cell::get) & RECORDING != 0
}

/// This thread's slot index, or `None` while its thread-locals are being torn down.
#[cfg(test)]
fn thread_slot() -> Option<usize> {
    match SLOT.with(Cell::get) & !RECORDING {
        NO_SLOT => lease_slot(),
        index => Some(index - 1),
    }
}

#[cold]
fn lease_slot() -> Option<usize> {
    let index = LEASE.try_with(|lease| lease.0).ok()?;
    SLOT.with(|slot| slot.set((index + 1) | slot.get() & RECORDING));
    Some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up() {
        let counters = Counters::new();
        // More threads than owned slots, several rounds, so slots are shared, returned and reused.
        for _ in 0..3 {
            std::thread::scope(|s| {
                for _ in 0..owned_slots() + 4 {
                    s.spawn(|| {
                        for _ in 0..1000 {
                            counters.hit();
                        }
                        counters.miss();
                        counters.inserted(2);
                    });
                }
            });
        }
        let threads = 3 * (owned_slots() as u64 + 4);
        let stats = counters.snapshot();
        assert_eq!(stats.hits, threads * 1000);
        assert_eq!(stats.misses, threads);
        assert_eq!(stats.inserts, threads);
        assert_eq!(stats.evictions, threads * 2);
    }

    #[test]
    fn a_recording_thread_is_told_so_and_counts_in_its_own_slot() {
        std::thread::spawn(|| {
            let counters = Counters::new();
            assert!(!counters.hit(), "not recording");
            set_recording(true);
            assert!(recording());
            assert!(counters.hit(), "recording");
            counters.miss();
            counters.inserted(0);
            set_recording(false);
            assert!(!recording());
            assert!(!counters.hit(), "not recording any more");
            let stats = counters.snapshot();
            assert_eq!((stats.hits, stats.misses, stats.inserts), (3, 1, 1));
            // Counted in this thread's slot, not the shared one, while recording too (unless
            // other tests' threads left this one no slot of its own).
            let slot = thread_slot().unwrap();
            if slot < counters.owned.len() {
                let own = &counters.owned[slot];
                assert_eq!(own.hits.load(Ordering::Relaxed), 3);
                assert_eq!(own.misses.load(Ordering::Relaxed), 1);
                assert_eq!(counters.shared.hits.load(Ordering::Relaxed), 0);
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn exited_threads_give_their_slot_back() {
        // Without reuse, 500 threads one after another would take indices up to 500 and more.
        let highest = (0..500)
            .map(|_| std::thread::spawn(thread_slot).join().unwrap().unwrap())
            .max()
            .unwrap();
        // Other tests run threads at the same time, so allow some, but far fewer than 500.
        assert!(highest < 200, "slot indices are not reused: {highest}");
    }
}
