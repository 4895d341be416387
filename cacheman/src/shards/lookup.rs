//! Lookups: a hit takes its shard's read lock only, and what it records of the use of a
//! tracked cache's entry (a bounded cache's use counter, sliding expiry's stamp) are plain
//! stores into the entry, made only when they change something.

use std::hash::Hash;
use std::sync::atomic::Ordering;

use super::{Entry, Limits, Meta, Shard, Shards, Tracked, policy};
use crate::query::Query;

/// What a lookup found.
pub(crate) enum Lookup<V> {
    Hit(V),
    Miss,
}

/// What [`Shards::get_held`] found.
pub(crate) enum Held<V> {
    Live(V),
    Expired(V),
    Absent,
}

/// What a hit on a tracked cache does besides reading the value, decided once from its
/// [`Limits`] so that the commonest kinds of hit test one flag each rather than each limit.
/// Two flags rather than an enum: the compiler turns a `match` into a switch of its own order.
#[derive(Debug, Clone, Copy)]
pub(super) struct OnHit {
    /// A capacity and no time-to-live: a hit counts the use and never reads the time.
    counts_use_only: bool,
    /// A time-to-live that a hit does not restart, and no capacity: a hit checks the stamp.
    checks_stamp_only: bool,
}

impl OnHit {
    pub(super) fn of(limits: &Limits) -> Self {
        OnHit {
            counts_use_only: limits.capacity.is_some() && limits.ttl.is_none() && !limits.refresh,
            checks_stamp_only: limits.capacity.is_none() && limits.ttl.is_some() && !limits.refresh,
        }
    }
}

/// Counts a use of a bounded cache's entry for the eviction policy.
#[inline(always)]
fn count_use(tracked: &Tracked) {
    let uses = tracked.uses.load(Ordering::Relaxed);
    if uses < policy::MAX_USES {
        // Not an atomic add: two hits at once may count as one, which is fine for a hint and
        // keeps the hit free of a locked instruction.
        tracked.uses.store(uses + 1, Ordering::Relaxed);
    }
}

impl<K, V, M> Shards<K, V, M>
where
    K: Hash + Eq + Clone,
    V: Clone,
    M: Meta,
{
    /// A lookup. On a tracked cache a hit also records the use, with plain stores into the
    /// entry (under the read lock, no lock of its own): a bounded cache counts it for the
    /// eviction policy, sliding expiry moves the stamp to `now_ms`. Neither store happens when
    /// it would not change anything, so a hot entry's cache line stays shared between readers.
    #[inline]
    pub(crate) fn get<Q: Query<K> + ?Sized>(&self, key: &Q, now_ms: u64) -> Lookup<V> {
        self.get_at(key, || now_ms)
    }

    /// [`Shards::get`], with the time read only if the hit needs it (a cache without a
    /// time-to-live never does).
    #[inline(always)]
    pub(crate) fn get_at<Q: Query<K> + ?Sized>(
        &self,
        key: &Q,
        now_ms: impl FnOnce() -> u64,
    ) -> Lookup<V> {
        let hash = self.hash(key);
        let shard = self.read(self.index_of(hash));
        match self.find_in(&shard, hash, key, now_ms) {
            Some((entry, true)) => Lookup::Hit(entry.value.clone()),
            _ => Lookup::Miss,
        }
    }

    /// The entry of `key` in a locked shard and whether it is live; a live entry's use is
    /// recorded (see [`Shards::get`]).
    #[inline(always)]
    fn find_in<'s, Q: Query<K> + ?Sized>(
        &self,
        shard: &'s Shard<K, V, M>,
        hash: u64,
        key: &Q,
        now_ms: impl FnOnce() -> u64,
    ) -> Option<(&'s Entry<K, V, M>, bool)> {
        let entry = shard.table.find(hash, |e| key.matches(&e.key))?;
        let Some(tracked) = entry.meta.tracked() else {
            return Some((entry, true));
        };
        if self.on_hit.counts_use_only {
            count_use(tracked);
            return Some((entry, true));
        }
        if self.on_hit.checks_stamp_only {
            return Some((entry, !self.expired(tracked.stamp_ms(), now_ms())));
        }
        let now_ms = now_ms();
        let live = self.is_live(&entry.meta, now_ms);
        if live {
            self.record_use(tracked, now_ms);
        }
        Some((entry, live))
    }

    fn record_use(&self, tracked: &Tracked, now_ms: u64) {
        if self.limits.capacity.is_some() {
            count_use(tracked);
        }
        if self.limits.refresh && now_ms > tracked.stamp_ms.load(Ordering::Relaxed) {
            tracked.stamp_ms.store(now_ms, Ordering::Relaxed);
        }
    }

    /// A lookup that also returns an expired value still held (see [`Limits::keep_expired`]).
    /// A live value's use is recorded as by [`Shards::get`].
    pub(crate) fn get_held(&self, key: &K, now_ms: u64) -> Held<V> {
        let hash = self.hash(key);
        let shard = self.read(self.index_of(hash));
        match self.find_in(&shard, hash, key, || now_ms) {
            Some((entry, true)) => Held::Live(entry.value.clone()),
            // Past the removal age, an entry not yet dropped is as good as gone.
            Some((entry, false)) if !self.removable(entry.meta.stamp_ms(), now_ms) => {
                Held::Expired(entry.value.clone())
            }
            _ => Held::Absent,
        }
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::shards::Hasher;

    #[test]
    fn a_hit_reads_the_time_only_when_a_limit_needs_it() {
        let shards = |limits| -> Shards<u32, u32, Tracked> {
            let s = Shards::new(4, Hasher::default(), limits);
            s.insert(1, 10, 1_000);
            s
        };
        let no_time = || -> u64 { panic!("a hit of a cache without a time-to-live read the time") };
        let bounded = shards(Limits {
            capacity: Some(100),
            ..Limits::default()
        });
        assert!(matches!(bounded.get_at(&1, no_time), Lookup::Hit(10)));
        let ttl = Some(Duration::from_millis(100));
        let expiring = shards(Limits {
            ttl,
            ..Limits::default()
        });
        assert!(matches!(expiring.get_at(&1, || 1_099), Lookup::Hit(10)));
        assert!(matches!(expiring.get_at(&1, || 1_100), Lookup::Miss));
        // A stamp ahead of the time read (a coarse time behind the insert's exact one): live.
        assert!(matches!(expiring.get_at(&1, || 990), Lookup::Hit(10)));
        let both = shards(Limits {
            ttl,
            capacity: Some(100),
            ..Limits::default()
        });
        assert!(matches!(both.get_at(&1, || 1_099), Lookup::Hit(10)));
        assert!(matches!(both.get_at(&1, || 1_100), Lookup::Miss));
        let sliding = shards(Limits {
            ttl,
            refresh: true,
            ..Limits::default()
        });
        assert!(matches!(sliding.get_at(&1, || 1_050), Lookup::Hit(10)));
        assert!(
            matches!(sliding.get_at(&1, || 1_149), Lookup::Hit(10)),
            "restarted"
        );
    }
}
