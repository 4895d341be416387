//! Which entries a tracked shard drops, and when: S3-FIFO eviction for a bounded cache
//! (docs/ARCHITECTURE.md says why this policy), and the ids that name entries in its queues and
//! in the expiry queue (`expiry.rs`).
//!
//! S3-FIFO (Yang et al., SOSP 2023) keeps a small FIFO queue for new entries (a tenth of the
//! capacity), a main FIFO queue for entries used again, and a ghost queue of hashes recently
//! evicted from the small one. A hit only counts a use in the entry (up to [`MAX_USES`]); all the
//! moving happens when an insert must evict: the small queue's oldest entry moves to the main
//! queue if it was used, else it leaves (and its hash goes to the ghost queue); the main queue's
//! oldest entry goes round again, one use less, if it was used, else it leaves. A new key whose
//! hash is in the ghost queue goes straight to the main queue. A one-off scan thus passes
//! through the small queue without flushing the main one.
//!
//! Queues name entries by (key hash, id), so evicting needs neither a key clone nor a rehash. A
//! removed entry leaves its name behind in a queue; such names are skipped when reached, and the
//! queues are compacted when they hold twice as many names as entries.

use std::collections::VecDeque;
use std::hash::Hash;

use hashbrown::HashTable;

use super::expiry::Due;
use super::{Entry, Limits, Meta, Shard, Shards, Tracked};

/// Most uses an entry's counter records: an entry used this often goes round the main queue
/// this many more times before it can be evicted without a new use.
pub(crate) const MAX_USES: u8 = 3;

/// The small queue's share of a shard's capacity, in tenths (S3-FIFO's 10 %).
const SMALL_TENTHS: usize = 1;

/// An entry in a queue: its key's hash (to find it in the table) and its id.
#[derive(Debug, Clone, Copy)]
pub(super) struct Name {
    pub(super) hash: u64,
    pub(super) tick: u32,
}

/// A tracked shard's bookkeeping besides its table.
pub(crate) struct Policy {
    /// The next id to hand out.
    next_tick: u32,
    /// Whether the shard is bounded (else the eviction queues stay empty).
    bounded: bool,
    /// How many entries the small queue holds before it gives up its oldest.
    small_target: usize,
    small: VecDeque<Name>,
    main: VecDeque<Name>,
    /// Entries in each queue (the queues also hold names of removed entries).
    small_len: usize,
    main_len: usize,
    ghost: Ghost,
    /// Whether entries expire, and whether a hit restarts their time-to-live.
    expiring: bool,
    pub(super) refresh: bool,
    /// Names of entries in the order they expire (see `expiry.rs`).
    pub(super) expiry: VecDeque<Due>,
    /// Whether `expiry` must be sorted before it is read.
    pub(super) expiry_unsorted: bool,
    /// Inserts since this shard last swept its neighbour's expired entries.
    pub(super) writes: u32,
}

impl Policy {
    /// The bookkeeping of a shard with `share` of the capacity (`usize::MAX`: unbounded).
    pub(super) fn new(limits: Limits, share: usize) -> Policy {
        let bounded = limits.capacity.is_some();
        let small_target = if bounded {
            (share * SMALL_TENTHS / 10).max(1)
        } else {
            0
        };
        Policy {
            next_tick: 0,
            bounded,
            small_target,
            small: VecDeque::new(),
            main: VecDeque::new(),
            small_len: 0,
            main_len: 0,
            // As many ghosts as the main queue holds entries, as in the paper.
            ghost: Ghost::new(if bounded {
                share.saturating_sub(small_target).max(1)
            } else {
                0
            }),
            expiring: limits.ttl.is_some(),
            refresh: limits.refresh,
            expiry: VecDeque::new(),
            expiry_unsorted: false,
            writes: 0,
        }
    }

    /// Gives a new entry its id and its place: the main queue if its hash is a recent ghost
    /// or it comes with uses (a stored row's: it was used again since it was admitted, which
    /// would have moved it there), else the small queue; and the expiry queue.
    pub(super) fn admit(&mut self, hash: u64, tracked: &mut Tracked, stamp_ms: u64) {
        let tick = self.next_tick;
        self.next_tick = self.next_tick.wrapping_add(1);
        tracked.tick = tick;
        let name = Name { hash, tick };
        if self.bounded {
            tracked.in_main = *tracked.uses.get_mut() > 0 || self.ghost.contains(hash);
            if tracked.in_main {
                self.main.push_back(name);
                self.main_len += 1;
            } else {
                self.small.push_back(name);
                self.small_len += 1;
            }
        }
        if self.expiring {
            self.schedule(Due {
                stamp_ms,
                hash,
                tick,
            });
        }
    }

    /// An entry's value was overwritten and stamped `stamp_ms`. Without sliding expiry its
    /// expiry moves: it gets a new place in the expiry queue (the old one is skipped when
    /// reached). With it, its one place is moved when reached, as after a hit.
    pub(super) fn restamped(&mut self, hash: u64, tick: u32, stamp_ms: u64) {
        if self.expiring && !self.refresh {
            self.schedule(Due {
                stamp_ms,
                hash,
                tick,
            });
        }
    }

    /// An entry left the table other than by eviction (removed, expired).
    pub(super) fn forget(&mut self, tracked: &Tracked) {
        if self.bounded {
            if tracked.in_main {
                self.main_len -= 1;
            } else {
                self.small_len -= 1;
            }
        }
    }

    /// Forgets every entry (the table was cleared); ids keep counting.
    pub(super) fn clear(&mut self) {
        self.small.clear();
        self.main.clear();
        self.small_len = 0;
        self.main_len = 0;
        self.ghost.clear();
        self.expiry.clear();
        self.expiry_unsorted = false;
    }

    /// Drops the names of removed entries from the eviction queues once they are half of
    /// what the queues hold (removals leave their names behind, and a cache that never fills
    /// would never reach them).
    fn compact<K, V, M: Meta>(&mut self, table: &HashTable<Entry<K, V, M>>) {
        let entries = self.small_len + self.main_len;
        if self.small.len() + self.main.len() <= 2 * entries + 64 {
            return;
        }
        let held = |name: &Name, main: bool| {
            table
                .find(name.hash, |e| e.meta.tick() == name.tick)
                .and_then(|e| e.meta.tracked())
                .is_some_and(|t| t.in_main == main)
        };
        self.small.retain(|name| held(name, false));
        self.main.retain(|name| held(name, true));
    }
}

impl<K, V, M> Shards<K, V, M>
where
    K: Hash + Eq + Clone,
    V: Clone,
    M: Meta,
{
    /// Evicts from a locked shard until it holds at most `capacity` entries; returns how many
    /// it evicted.
    pub(super) fn evict_locked(&self, shard: &mut Shard<K, V, M>, capacity: usize) -> usize {
        let Shard { table, policy, .. } = shard;
        let Some(policy) = policy else {
            return 0;
        };
        policy.compact(table);
        let mut evicted = 0;
        while table.len() > capacity {
            let from_small = policy.small_len >= policy.small_target && policy.small_len > 0
                || policy.main_len == 0;
            let queue = if from_small {
                &mut policy.small
            } else {
                &mut policy.main
            };
            let Some(name) = queue.pop_front() else {
                // The counts say an entry is queued and the queue is empty: cannot happen,
                // but an endless loop would be the worse answer.
                debug_assert!(false, "eviction queues out of step with their counts");
                break;
            };
            let Ok(mut found) = table.find_entry(name.hash, |e| e.meta.tick() == name.tick) else {
                continue; // removed since it was queued
            };
            let Some(tracked) = found.get_mut().meta.tracked_mut() else {
                break;
            };
            let uses = tracked.uses.get_mut();
            if from_small {
                policy.small_len -= 1;
                if *uses > 0 {
                    *uses -= 1;
                    tracked.in_main = true;
                    policy.main.push_back(name);
                    policy.main_len += 1;
                    continue;
                }
                policy.ghost.remember(name.hash);
            } else {
                if *uses > 0 {
                    *uses -= 1;
                    policy.main.push_back(name);
                    continue;
                }
                policy.main_len -= 1;
            }
            found.remove();
            evicted += 1;
        }
        evicted
    }
}

/// Hashes of keys recently evicted from the small queue, oldest first, at most `limit`.
struct Ghost {
    order: VecDeque<u64>,
    /// Each hash in `order`, with how many times it is there.
    counts: HashTable<(u64, u32)>,
    limit: usize,
}

impl Ghost {
    fn new(limit: usize) -> Self {
        Ghost {
            order: VecDeque::new(),
            counts: HashTable::new(),
            limit,
        }
    }

    fn contains(&self, hash: u64) -> bool {
        self.counts.find(hash, |c| c.0 == hash).is_some()
    }

    fn remember(&mut self, hash: u64) {
        if self.limit == 0 {
            return;
        }
        self.order.push_back(hash);
        match self.counts.find_mut(hash, |c| c.0 == hash) {
            Some(count) => count.1 += 1,
            None => {
                self.counts.insert_unique(hash, (hash, 1), |c| c.0);
            }
        }
        if self.order.len() > self.limit
            && let Some(oldest) = self.order.pop_front()
            && let Ok(mut count) = self.counts.find_entry(oldest, |c| c.0 == oldest)
        {
            if count.get().1 > 1 {
                count.get_mut().1 -= 1;
            } else {
                count.remove();
            }
        }
    }

    fn clear(&mut self) {
        self.order.clear();
        self.counts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Hasher, Limits, Lookup};
    use super::*;

    fn bounded(capacity: usize) -> Shards<u32, u32, Tracked> {
        Shards::new(
            1,
            Hasher::default(),
            Limits {
                capacity: Some(capacity),
                ..Limits::default()
            },
        )
    }

    fn hit(s: &Shards<u32, u32, Tracked>, key: u32) -> bool {
        matches!(s.get(&key, 0), Lookup::Hit(_))
    }

    #[test]
    fn an_unused_entry_is_evicted_before_a_used_one() {
        let s = bounded(2);
        s.insert(1, 10, 0);
        s.insert(2, 20, 0);
        assert!(matches!(s.get(&1, 0), Lookup::Hit(10)));
        let (_, evicted) = s.insert(3, 30, 0);
        assert_eq!(evicted, 1);
        assert!(!hit(&s, 2));
        assert!(matches!(s.get(&1, 0), Lookup::Hit(10)));
        assert!(matches!(s.get(&3, 0), Lookup::Hit(30)));
        assert_eq!(s.len(0), 2);
    }

    #[test]
    fn overwriting_a_key_does_not_evict_and_counts_as_a_use() {
        let s = bounded(2);
        s.insert(1, 10, 0);
        s.insert(2, 20, 0);
        let (previous, evicted) = s.insert(1, 11, 0);
        assert_eq!((previous, evicted), (Some(10), 0));
        s.insert(3, 30, 0);
        assert!(!hit(&s, 2));
        assert!(matches!(s.get(&1, 0), Lookup::Hit(11)));
    }

    #[test]
    fn the_capacity_is_never_exceeded() {
        let s = bounded(100);
        for k in 0..10_000 {
            s.insert(k % 700, k, 0);
            if k % 3 == 0 {
                s.get(&(k % 50), 0);
            }
            if k % 7 == 0 {
                s.remove(&(k % 300), 0);
            }
            assert!(s.read(0).table.len() <= 100);
        }
        assert_eq!(s.len(0), 100);
    }

    #[test]
    fn a_scan_does_not_flush_the_entries_in_use() {
        let s = bounded(1_000);
        // A hot set, used more than once.
        for _ in 0..3 {
            for k in 0..500 {
                if !hit(&s, k) {
                    s.insert(k, k, 0);
                }
            }
        }
        // A one-off scan over twenty times the capacity.
        for k in 100_000..120_000 {
            s.insert(k, k, 0);
        }
        let kept = (0..500).filter(|&k| hit(&s, k)).count();
        assert_eq!(kept, 500, "the scan evicted {} hot entries", 500 - kept);
    }

    #[test]
    fn a_key_evicted_recently_comes_back_to_the_main_queue() {
        let s = bounded(10);
        s.insert(0, 0, 0);
        for k in 1..=10 {
            s.insert(k, k, 0); // 0 leaves the small queue unused: a ghost
        }
        assert!(!hit(&s, 0));
        s.insert(0, 0, 0);
        let tracked_in_main = |k: u32| {
            let shard = s.read(0);
            let hash = s.hash(&k);
            shard.table.find(hash, |e| e.key == k).unwrap().meta.in_main
        };
        assert!(tracked_in_main(0));
        assert!(!tracked_in_main(10));
    }

    #[test]
    fn removals_do_not_grow_the_queues_without_end() {
        let s = bounded(1_000_000);
        for k in 0..100_000 {
            s.insert(k, k, 0);
            s.remove(&k, 0);
        }
        let shard = s.read(0);
        let policy = shard.policy.as_ref().unwrap();
        assert!(
            policy.small.len() + policy.main.len() <= 64 + 1,
            "{}",
            policy.small.len()
        );
    }
}
