//! Expired entries leave memory (a cache that keeps them as fallbacks, one time-to-live later):
//! each tracked shard of a cache with a time-to-live keeps its
//! entries' names in the order they expire, and drops the expired ones at the front whenever
//! its write lock is taken for an insert (cheap: it stops at the first live one), before a
//! save copies it, and before its entries are counted. Every 32 inserts into a shard also sweep
//! the next shard, so shards that see no inserts are swept too. Lookups never do any of this:
//! they only skip expired entries.
//!
//! The queue is sorted by stamp, and every entry has a place in it no later than its own stamp
//! (with sliding expiry an entry has exactly one, moved back when reached if a hit refreshed
//! the entry; without it an overwrite adds a new place and the old one is skipped). So once the
//! front is live, every entry of the shard is live, which is what makes `len()` exact.

use std::collections::HashSet;
use std::hash::Hash;

use super::policy::Policy;
use super::{Meta, Shard, Shards};

/// Inserts into a shard between two sweeps of the next shard.
const SWEEP_EVERY: u32 = 32;

/// An entry's place in the expiry queue: its stamp when placed, and its name.
#[derive(Debug, Clone, Copy)]
pub(super) struct Due {
    pub(super) stamp_ms: u64,
    pub(super) hash: u64,
    pub(super) tick: u32,
}

impl Policy {
    /// Places `due` at the back of the expiry queue. Stamps mostly come in order (the
    /// clock's); one that does not (rows loaded or merged from a file, a clock set back) marks
    /// the queue for sorting before it is next read, so a batch of them costs one sort, not a
    /// shift each.
    pub(super) fn schedule(&mut self, due: Due) {
        if self
            .expiry
            .back()
            .is_some_and(|last| last.stamp_ms > due.stamp_ms)
        {
            self.expiry_unsorted = true;
        }
        self.expiry.push_back(due);
    }

    /// Places `due` where its stamp sorts in the expiry queue, which must be sorted.
    fn schedule_in_order(&mut self, due: Due) {
        let at = self.expiry.partition_point(|d| d.stamp_ms <= due.stamp_ms);
        self.expiry.insert(at, due);
    }

    /// Sorts the expiry queue if [`Policy::schedule`] left it out of order.
    fn sort_expiry(&mut self) {
        if std::mem::take(&mut self.expiry_unsorted) {
            self.expiry.make_contiguous().sort_by_key(|d| d.stamp_ms);
        }
    }
}

impl<K, V, M> Shards<K, V, M>
where
    K: Hash + Eq + Clone,
    V: Clone,
    M: Meta,
{
    /// Drops a locked shard's expired entries; returns how many.
    pub(super) fn expire_locked(&self, shard: &mut Shard<K, V, M>, now_ms: u64) -> usize {
        let Shard { table, policy, .. } = shard;
        let Some(policy) = policy else {
            return 0;
        };
        policy.sort_expiry();
        let mut expired = 0;
        while let Some(&due) = policy.expiry.front() {
            if !self.removable(due.stamp_ms, now_ms) {
                break;
            }
            policy.expiry.pop_front();
            let Ok(found) = table.find_entry(due.hash, |e| e.meta.tick() == due.tick) else {
                continue; // removed since
            };
            let stamp_ms = found.get().meta.stamp_ms();
            if self.removable(stamp_ms, now_ms) {
                let (entry, _) = found.remove();
                if let Some(tracked) = entry.meta.tracked() {
                    policy.forget(tracked);
                }
                expired += 1;
            } else if policy.refresh {
                // A hit restarted its time-to-live: its one place moves to its new stamp (near
                // the back: the stamp is recent).
                policy.schedule_in_order(Due { stamp_ms, ..due });
            }
            // Else overwritten since: a later place of its own is further on.
        }
        if policy.expiry.len() > 2 * table.len() + 64 {
            // Removals and overwrites left places behind: keep each entry's last.
            let mut seen = HashSet::new();
            let mut kept = std::collections::VecDeque::with_capacity(table.len());
            for due in policy.expiry.iter().rev() {
                let live = table
                    .find(due.hash, |e| e.meta.tick() == due.tick)
                    .is_some_and(|e| policy.refresh || e.meta.stamp_ms() == due.stamp_ms);
                if live && seen.insert((due.hash, due.tick)) {
                    kept.push_front(*due);
                }
            }
            policy.expiry = kept;
        }
        expired
    }

    /// Every [`SWEEP_EVERY`] inserts into shard `index`, drops the expired entries of the
    /// next shard, if its lock is free (the caller holds shard `index`'s).
    pub(super) fn sweep_neighbour(&self, shard: &mut Shard<K, V, M>, index: usize, now_ms: u64) {
        let Some(policy) = &mut shard.policy else {
            return;
        };
        if self.limits.ttl.is_none() || self.shards.len() == 1 {
            return;
        }
        policy.writes += 1;
        if policy.writes < SWEEP_EVERY {
            return;
        }
        policy.writes = 0;
        let next = (index + 1) & (self.shards.len() - 1);
        if let Ok(mut neighbour) = self.shards[next].0.try_write() {
            self.expire_locked(&mut neighbour, now_ms);
        }
    }

    /// Drops shard `index`'s expired entries, taking its write lock only if there are any.
    pub(crate) fn purge_expired_shard(&self, index: usize, now_ms: u64) {
        if !M::TRACKED || self.limits.ttl.is_none() {
            return;
        }
        let due = {
            let shard = self.read(index);
            let Some(policy) = shard.policy.as_ref() else {
                return;
            };
            let front = policy.expiry.front();
            policy.expiry_unsorted || front.is_some_and(|d| self.removable(d.stamp_ms, now_ms))
        };
        if due {
            self.expire_locked(&mut self.write(index), now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Hasher, Limits, Lookup, Tracked};
    use super::*;

    fn expiring(shards: usize, ttl_ms: u64, refresh: bool) -> Shards<u32, u32, Tracked> {
        Shards::new(
            shards,
            Hasher::default(),
            Limits {
                ttl: Some(Duration::from_millis(ttl_ms)),
                refresh,
                ..Limits::default()
            },
        )
    }

    fn held(s: &Shards<u32, u32, Tracked>) -> usize {
        (0..s.shards.len()).map(|i| s.read(i).table.len()).sum()
    }

    #[test]
    fn expired_entries_are_not_served_counted_or_saved() {
        let s = expiring(4, 100, false);
        s.insert(1, 10, 1_000);
        assert!(matches!(s.get(&1, 1_099), Lookup::Hit(10)));
        assert_eq!(s.snapshot(1_050).len(), 1);
        assert!(matches!(s.get(&1, 1_100), Lookup::Miss));
        assert!(!s.contains_key(&1, 1_100));
        assert_eq!(held(&s), 1, "lookups only skip it");
        assert!(s.snapshot(1_100).is_empty());
        assert_eq!(held(&s), 0, "the snapshot dropped it");
        s.insert(2, 20, 1_000);
        assert_eq!(s.len(1_100), 0);
        assert_eq!(held(&s), 0, "counting dropped it");
    }

    #[test]
    fn inserts_drop_the_expired_entries_of_their_shard_and_its_neighbour() {
        let s = expiring(2, 100, false);
        let in_shard =
            |i, n| -> Vec<u32> { (0u32..).filter(|k| s.shard_of(k) == i).take(n).collect() };
        for k in in_shard(1, 10) {
            s.insert(k, k, 0);
        }
        let keys = in_shard(0, SWEEP_EVERY as usize);
        s.insert(keys[0], 0, 100);
        assert_eq!(s.read(1).table.len(), 10, "swept before its turn");
        for &k in &keys[1..] {
            s.insert(k, k, 100);
        }
        assert_eq!(s.read(1).table.len(), 0, "shard 1 was not swept");
        assert_eq!(held(&s), keys.len());
    }

    #[test]
    fn an_overwrite_restarts_the_time_to_live() {
        let s = expiring(1, 100, false);
        s.insert(1, 10, 0);
        s.insert(1, 11, 60);
        s.insert(2, 20, 120); // drops what expired by 120: not 1, stamped 60
        assert!(matches!(s.get(&1, 159), Lookup::Hit(11)));
        assert_eq!(s.len(160), 1);
        assert!(matches!(s.get(&2, 160), Lookup::Hit(20)));
    }

    #[test]
    fn sliding_expiry_keeps_entries_that_are_read() {
        let s = expiring(1, 100, true);
        s.insert(1, 10, 0);
        s.insert(2, 20, 0);
        for now in (50..=500).step_by(50) {
            assert!(matches!(s.get(&1, now), Lookup::Hit(10)), "at {now}");
        }
        assert_eq!(s.len(500), 1, "2, never read, expired");
        assert!(matches!(s.get(&1, 599), Lookup::Hit(10)));
        assert_eq!(s.len(698), 1);
        assert_eq!(s.len(699), 0);
    }

    #[test]
    fn stamps_out_of_order_are_queued_in_order() {
        let s = expiring(1, 100, false);
        s.replace_all(
            super::super::stamped_rows(vec![(1, 1, 500), (2, 2, 100), (3, 3, 300)]),
            100,
        );
        assert_eq!(s.len(250), 2);
        assert_eq!(s.len(450), 1);
        s.insert(4, 4, 50); // a clock set back
        assert_eq!(s.len(450), 1);
        assert_eq!(s.len(600), 0);
        // Merged from another process's file, newest first.
        s.adopt(
            (0..100)
                .rev()
                .map(|k| (k, k, super::super::RowMeta::stamped(1_000 + u64::from(k))))
                .collect(),
            vec![],
            1_000,
        );
        assert_eq!(s.len(1_099), 100);
        assert_eq!(s.len(1_150), 49);
        assert_eq!(held(&s), 49);
    }

    #[test]
    fn overwrites_and_removals_do_not_grow_the_queue_without_end() {
        let s = expiring(1, 3_600_000, false);
        for n in 0..100_000 {
            s.insert(n % 10, n, u64::from(n));
            s.remove(&(n % 7), u64::from(n));
        }
        let shard = s.read(0);
        assert!(shard.policy.as_ref().unwrap().expiry.len() <= 2 * 10 + 64 + 1);
    }

    #[test]
    fn a_million_keys_over_hours_leave_only_the_live_ones_in_memory() {
        // 1,000,000 distinct keys, one every 10 ms (2.8 hours), a 60 s time-to-live: 6,000
        // live at any time. No lookup, no `len()`: only inserts keep memory down.
        let s = expiring(64, 60_000, false);
        let live = 6_000;
        for n in 0..1_000_000u32 {
            s.insert(n, n, u64::from(n) * 10);
            if n % 100_000 == 99_999 {
                let held = held(&s);
                assert!(
                    held <= live + live / 2,
                    "{held} entries held after {n} inserts"
                );
            }
        }
        assert_eq!(s.len(9_999_990), live);
    }
}
