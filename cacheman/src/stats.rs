//! Counters of what a cache did. Hit, miss and insert counters are striped by shard, so threads
//! working on different shards never write to the same cache line.

use std::sync::atomic::{AtomicU64, Ordering};

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
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

#[repr(align(128))]
#[derive(Default)]
struct Cell(AtomicU64);

/// A counter split into cells, one per shard.
struct Striped {
    cells: Box<[Cell]>,
}

impl Striped {
    fn new(cells: usize) -> Self {
        Striped {
            cells: (0..cells).map(|_| Cell::default()).collect(),
        }
    }

    fn add(&self, cell: usize, n: u64) {
        self.cells[cell & (self.cells.len() - 1)]
            .0
            .fetch_add(n, Ordering::Relaxed);
    }

    fn sum(&self) -> u64 {
        self.cells.iter().map(|c| c.0.load(Ordering::Relaxed)).sum()
    }
}

pub(crate) struct Counters {
    hits: Striped,
    misses: Striped,
    inserts: Striped,
    evictions: AtomicU64,
    loads: AtomicU64,
    saves: AtomicU64,
}

impl Counters {
    /// `stripes` must be a power of two (the shard count is).
    pub(crate) fn new(stripes: usize) -> Self {
        Counters {
            hits: Striped::new(stripes),
            misses: Striped::new(stripes),
            inserts: Striped::new(stripes),
            evictions: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            saves: AtomicU64::new(0),
        }
    }

    pub(crate) fn hit(&self, shard: usize) {
        self.hits.add(shard, 1);
    }
    pub(crate) fn miss(&self, shard: usize) {
        self.misses.add(shard, 1);
    }
    pub(crate) fn inserted(&self, shard: usize, evicted: usize) {
        self.inserts.add(shard, 1);
        if evicted > 0 {
            self.evictions.fetch_add(evicted as u64, Ordering::Relaxed);
        }
    }
    pub(crate) fn evicted(&self, n: usize) {
        self.evictions.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn loaded(&self) {
        self.loads.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn saved(&self) {
        self.saves.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.sum(),
            misses: self.misses.sum(),
            inserts: self.inserts.sum(),
            evictions: self.evictions.load(Ordering::Relaxed),
            loads: self.loads.load(Ordering::Relaxed),
            saves: self.saves.load(Ordering::Relaxed),
        }
    }
}
