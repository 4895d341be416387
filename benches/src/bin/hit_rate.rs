//! Eviction quality of a bounded cache (issue 18): the hit rate of cacheman's
//! `CacheOptions::capacity`, of an exact LRU simulated here, and of quick_cache on the same
//! skewed traces: Zipf with s = 0.9 and 1.1, 1,000,000 requests over 100,000 keys, capacity
//! 1,000 and 10,000. Each request is a lookup followed, on a miss, by an insert, as a memoized
//! function does. And a scan-resistance case: a hot Zipf workload, a one-off scan of 20,000 new
//! keys, then the hot workload again; how many of the 100 hottest keys the scan left in the
//! cache, and the hit rate of the 50,000 requests after it.
//!
//! `cargo run --release -p benches --bin hit_rate` prints one JSON object. Hit rates do not
//! depend on the machine's speed: the figures are the same on every run with the same seed.

use std::collections::{BTreeMap, HashMap};

const KEYS: usize = 100_000;
const REQUESTS: usize = 1_000_000;
const SEED: u64 = 0x5eed_cace;

/// A contender: `access(key)` returns whether it was a hit (and inserts on a miss);
/// `holds(key)` looks without counting a use.
trait Contender {
    fn access(&mut self, key: u64) -> bool;
    fn holds(&self, key: u64) -> bool;
}

/// Exact LRU: a recency order (tick → key) and each key's tick.
struct Lru {
    capacity: usize,
    ticks: HashMap<u64, u64>,
    order: BTreeMap<u64, u64>,
    next: u64,
}

impl Lru {
    fn new(capacity: usize) -> Self {
        Lru {
            capacity,
            ticks: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
        }
    }
}

impl Contender for Lru {
    fn access(&mut self, key: u64) -> bool {
        self.next += 1;
        let hit = match self.ticks.insert(key, self.next) {
            Some(old) => {
                self.order.remove(&old);
                true
            }
            None => false,
        };
        self.order.insert(self.next, key);
        if self.ticks.len() > self.capacity
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.ticks.remove(&oldest);
        }
        hit
    }
    fn holds(&self, key: u64) -> bool {
        self.ticks.contains_key(&key)
    }
}

/// A concurrent cache: a lookup that counts a use, an insert, a look that does not.
trait Map {
    fn lookup(&self, key: u64) -> bool;
    fn insert(&self, key: u64);
    fn peek(&self, key: u64) -> bool;
}

impl<M: Map> Contender for M {
    fn access(&mut self, key: u64) -> bool {
        self.lookup(key) || {
            self.insert(key);
            false
        }
    }
    fn holds(&self, key: u64) -> bool {
        self.peek(key)
    }
}

impl Map for quick_cache::sync::Cache<u64, u64> {
    fn lookup(&self, key: u64) -> bool {
        self.get(&key).is_some()
    }
    fn insert(&self, key: u64) {
        quick_cache::sync::Cache::insert(self, key, key);
    }
    fn peek(&self, key: u64) -> bool {
        quick_cache::sync::Cache::peek(self, &key).is_some()
    }
}

impl Map for cacheman::Cache<u64, u64> {
    fn lookup(&self, key: u64) -> bool {
        self.get(&key).is_some()
    }
    fn insert(&self, key: u64) {
        cacheman::Cache::insert(self, key, key);
    }
    fn peek(&self, key: u64) -> bool {
        self.contains_key(&key)
    }
}

/// SplitMix64: a small, good generator, so the traces need no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf(s) over `KEYS` keys: rank r has weight 1 / r^s; ranks map to scattered keys.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(s: f64) -> Self {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (1..=KEYS)
            .map(|r| {
                total += 1.0 / (r as f64).powf(s);
                total
            })
            .collect();
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }
    /// The key of rank `rank` (0 is the hottest).
    fn key(rank: usize) -> u64 {
        // An odd multiplier modulo a power of two above KEYS scatters ranks over keys.
        (rank as u64).wrapping_mul(0x9e37_79b9) % (1 << 20)
    }
    fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        Self::key(self.cdf.partition_point(|&c| c < u).min(KEYS - 1))
    }
    fn trace(&self, n: usize, seed: u64) -> Vec<u64> {
        let mut rng = Rng(seed);
        (0..n).map(|_| self.sample(&mut rng)).collect()
    }
}

fn contenders(dir: &std::path::Path, capacity: usize) -> Vec<(&'static str, Box<dyn Contender>)> {
    let manager = cacheman::CacheManager::new("hit_rate", dir);
    let options = cacheman::CacheOptions::new()
        .persistent(false)
        .capacity(capacity);
    let cache = manager
        .register_custom_cache::<u64, u64>("bounded", options)
        .expect("a memory cache");
    vec![
        ("cacheman", Box::new(cache)),
        ("lru", Box::new(Lru::new(capacity))),
        (
            "quick_cache",
            Box::new(quick_cache::sync::Cache::<u64, u64>::new(capacity)),
        ),
    ]
}

fn hit_rate(contender: &mut dyn Contender, trace: &[u64]) -> f64 {
    let hits = trace.iter().filter(|&&k| contender.access(k)).count();
    hits as f64 / trace.len() as f64
}

fn main() {
    let dir = benches::private_cache_dir();
    let mut rows = Vec::new();
    for s in [0.9, 1.1] {
        let trace = Zipf::new(s).trace(REQUESTS, SEED);
        for capacity in [1_000, 10_000] {
            let rates: Vec<String> = contenders(dir.path(), capacity)
                .into_iter()
                .map(|(name, mut c)| format!("\"{name}\": {:.4}", hit_rate(&mut *c, &trace)))
                .collect();
            rows.push(format!(
                "{{\"s\": {s}, \"capacity\": {capacity}, {}}}",
                rates.join(", ")
            ));
        }
    }

    // Scan resistance: capacity 1,000, Zipf s = 1.1.
    let zipf = Zipf::new(1.1);
    let (before, after) = (zipf.trace(200_000, SEED), zipf.trace(50_000, SEED + 1));
    let scan: Vec<u64> = (0..20_000).map(|i| (1 << 21) + i).collect();
    let hottest: Vec<u64> = (0..100).map(Zipf::key).collect();
    let mut scans = Vec::new();
    for (name, mut c) in contenders(dir.path(), 1_000) {
        hit_rate(&mut *c, &before);
        hit_rate(&mut *c, &scan);
        let kept = hottest.iter().filter(|&&k| c.holds(k)).count();
        let rate = hit_rate(&mut *c, &after);
        scans.push(format!(
            "\"{name}\": {{\"hot_kept_of_100\": {kept}, \"hit_rate_after\": {rate:.4}}}"
        ));
    }
    println!(
        "{{\"keys\": {KEYS}, \"requests\": {REQUESTS}, \"zipf\": [{}], \"scan\": {{{}}}}}",
        rows.join(", "),
        scans.join(", ")
    );
}
