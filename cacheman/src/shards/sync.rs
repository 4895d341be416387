//! Keeping memory in step with a file that other processes save too: the journal of keys
//! changed since the last sync is taken together with the snapshot, and what other processes
//! saved is adopted only for keys this process did not change since. A save to a store that
//! takes changes (the journal) takes the journal's keys with their rows alone
//! ([`Shards::take_changes`]) instead of a whole snapshot.

use std::collections::HashSet;
use std::hash::Hash;

use super::RowMeta;
use super::{Meta, Shards, Sink};

impl<K, V, M> Shards<K, V, M>
where
    K: Hash + Eq + Clone,
    V: Clone,
    M: Meta,
{
    /// Puts the live entries into `sink` and returns the journaled keys, taken. A shard's
    /// journal is taken under the first hold of its read lock, before its entries are copied (a
    /// few buckets per hold, see [`Shards::copy_shard`]), so a change made during the copy is
    /// in the next journal whether or not the copy caught it: it wins over other processes'
    /// saves next time too. On the sink's error the keys taken so far come back with it, for
    /// [`Shards::restore_journal`].
    pub(crate) fn snapshot_with_journal<S: Sink<K, V> + ?Sized>(
        &self,
        now_ms: u64,
        sink: &mut S,
    ) -> (Vec<K>, Result<(), S::Error>) {
        let mut touched = Vec::new();
        for i in 0..self.shards.len() {
            let take_journal = |shard: &super::Shard<K, V, M>| {
                if let Some(journal) = &shard.journal {
                    let mut journal = journal.lock().unwrap_or_else(|e| e.into_inner());
                    // Taken, not drained: a drained set keeps its capacity, as much memory as
                    // the largest batch of changes ever made between two saves.
                    let empty = HashSet::with_hasher(self.hasher.clone());
                    touched.extend(std::mem::replace(&mut *journal, empty));
                }
            };
            if let Err(err) = self.copy_shard(i, now_ms, sink, take_journal) {
                return (touched, Err(err));
            }
        }
        (touched, Ok(()))
    }

    /// Takes the journal's keys (inserted or removed since the last sync): the rows of those
    /// that hold a live entry, and the others (removed, evicted or expired): what a save to a
    /// journal appends. Each shard's journal is taken and its entries read under one hold of
    /// its read lock, so a change made after that is in the next journal.
    pub(crate) fn take_changes(&self, now_ms: u64) -> (Vec<(K, V, RowMeta)>, Vec<K>) {
        let mut rows = Vec::new();
        let mut removed = Vec::new();
        for i in 0..self.shards.len() {
            let shard = self.read(i);
            let Some(journal) = &shard.journal else {
                continue;
            };
            let keys = {
                let mut journal = journal.lock().unwrap_or_else(|e| e.into_inner());
                if journal.is_empty() {
                    continue;
                }
                std::mem::replace(&mut *journal, HashSet::with_hasher(self.hasher.clone()))
            };
            for key in keys {
                let entry = shard.table.find(self.hash(&key), |e| e.key == key);
                match entry.filter(|e| self.is_live(&e.meta, now_ms)) {
                    Some(entry) => rows.push((key, entry.value.clone(), entry.meta.row_meta())),
                    None => removed.push(key),
                }
            }
        }
        (rows, removed)
    }

    /// The journal's keys (inserted or removed since the last sync), left in place; `None`
    /// when this map keeps no journal. Costs the changes, not the map.
    pub(crate) fn changed_keys(&self) -> Option<Vec<K>> {
        let mut keys = Vec::new();
        for i in 0..self.shards.len() {
            let shard = self.read(i);
            let journal = shard.journal.as_ref()?;
            keys.extend(
                journal
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .cloned(),
            );
        }
        Some(keys)
    }

    /// How many keys the journal holds (inserted or removed since the last sync).
    pub(crate) fn changed_len(&self) -> usize {
        (0..self.shards.len())
            .map(|i| {
                let shard = self.read(i);
                shard.journal.as_ref().map_or(0, |journal| {
                    journal.lock().unwrap_or_else(|e| e.into_inner()).len()
                })
            })
            .sum()
    }

    /// Rows stamped before this are past their removal age at `now_ms` (0: nothing expires).
    pub(crate) fn dropped_before(&self, now_ms: u64) -> u64 {
        match M::TRACKED && self.limits.ttl.is_some() {
            true => now_ms.saturating_sub(self.removal_ms).saturating_add(1),
            false => 0,
        }
    }

    /// Takes in another process's rewrite of the whole contents: memory becomes `rows`, except
    /// for the keys in `kept` (this process's changes, which the store has just appended after
    /// them) and keys changed here since the snapshot. Returns how many entries capacity
    /// evicted.
    pub(crate) fn resync(&self, rows: Vec<(K, V, RowMeta)>, kept: &[K], now_ms: u64) -> usize {
        let kept: HashSet<&K, _> = {
            let mut set = HashSet::with_hasher(self.hasher.clone());
            set.extend(kept);
            set
        };
        let incoming: HashSet<&K, _> = {
            let mut set = HashSet::with_hasher(self.hasher.clone());
            set.extend(rows.iter().map(|(k, _, _)| k));
            set
        };
        let mut gone = Vec::new();
        for i in 0..self.shards.len() {
            let shard = self.read(i);
            gone.extend(
                shard
                    .table
                    .iter()
                    .filter(|e| !kept.contains(&e.key) && !incoming.contains(&e.key))
                    .map(|e| e.key.clone()),
            );
        }
        drop(incoming);
        let rows = rows
            .into_iter()
            .filter(|(k, _, _)| !kept.contains(k))
            .collect();
        self.adopt(rows, gone, now_ms)
    }

    /// Puts drained keys back after a save that failed, so the next save still knows them.
    pub(crate) fn restore_journal(&self, keys: Vec<K>) {
        for key in keys {
            let index = self.shard_of(&key);
            if let Some(journal) = self.write(index).journal_mut() {
                journal.insert(key);
            }
        }
    }

    /// Takes in what another process saved: `rows` are inserted and `gone` keys removed, except
    /// keys changed here since the snapshot (they are newer, and the next save carries them).
    /// Returns how many entries capacity evicted.
    pub(crate) fn adopt(&self, rows: Vec<(K, V, RowMeta)>, gone: Vec<K>, now_ms: u64) -> usize {
        let changed_here = |shard: &mut super::Shard<K, V, M>, key: &K| {
            shard.journal_mut().is_some_and(|j| j.contains(key))
        };
        let mut evicted = 0;
        for (key, value, mut row) in rows {
            let hash = self.hash(&key);
            let mut shard = self.write(self.index_of(hash));
            if row.stamp_ms == 0 {
                row.stamp_ms = now_ms;
            }
            if !changed_here(&mut shard, &key) && !self.is_dropped_row(row.stamp_ms, now_ms) {
                evicted += self
                    .insert_locked(&mut shard, hash, key, value, row, now_ms)
                    .1;
            }
        }
        for key in gone {
            let mut shard = self.write(self.shard_of(&key));
            if !changed_here(&mut shard, &key) {
                self.take_locked(&mut shard, &key);
            }
        }
        // Rows come in the file's order, not their stamps': the expiry queues are sorted once
        // here, not at each row.
        for i in 0..self.shards.len() {
            self.purge_expired_shard(i, now_ms);
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Hasher, Limits, Lookup};
    use super::*;
    use crate::shards::stamped_rows as at;

    fn journaled() -> Shards<u32, u32, ()> {
        Shards::new(
            4,
            Hasher::default(),
            Limits {
                journal: true,
                ..Limits::default()
            },
        )
    }

    fn snapshot(s: &Shards<u32, u32, ()>) -> (Vec<(u32, u32, RowMeta)>, Vec<u32>) {
        let mut rows = Vec::new();
        let (touched, done) = s.snapshot_with_journal(0, &mut rows);
        super::super::infallible(done);
        (rows, touched)
    }

    #[test]
    fn the_journal_holds_inserted_and_removed_keys_until_drained() {
        let s = journaled();
        s.insert(1, 1, 0);
        s.insert(2, 2, 0);
        s.remove(&1, 0);
        let (rows, mut touched) = snapshot(&s);
        touched.sort();
        assert_eq!(rows, at(vec![(2, 2, 0)]));
        assert_eq!(touched, vec![1, 2]);
        assert!(snapshot(&s).1.is_empty());
        s.restore_journal(touched);
        assert_eq!(snapshot(&s).1.len(), 2);
    }

    #[test]
    fn changes_are_the_journaled_keys_with_the_rows_of_those_still_held() {
        let s = journaled();
        s.insert(1, 1, 0);
        s.insert(2, 2, 0);
        snapshot(&s);
        s.insert(3, 3, 0);
        s.insert(1, 10, 0);
        s.remove(&2, 0);
        let (mut rows, removed) = s.take_changes(0);
        rows.sort();
        assert_eq!(rows, at(vec![(1, 10, 0), (3, 3, 0)]));
        assert_eq!(removed, vec![2]);
        assert!(s.take_changes(0).1.is_empty());
    }

    #[test]
    fn a_resync_takes_the_rewritten_contents_except_our_own_changes() {
        let s = journaled();
        for k in 1..=4 {
            s.insert(k, k, 0);
        }
        snapshot(&s);
        s.insert(5, 5, 0); // changed after the save's changes were taken: kept
        // The store rewrote {1: 100, 2: 2, 6: 6}; this save wrote key 3.
        s.resync(
            at(vec![(1, 100, 0), (2, 2, 0), (3, 300, 0), (6, 6, 0)]),
            &[3],
            0,
        );
        let got = |k| match s.get(&k, 0) {
            Lookup::Hit(v) => Some(v),
            Lookup::Miss => None,
        };
        assert_eq!(
            (1..=6).map(got).collect::<Vec<_>>(),
            vec![Some(100), Some(2), Some(3), None, Some(5), Some(6)]
        );
    }

    #[test]
    fn adoption_skips_keys_changed_since_the_snapshot() {
        let s = journaled();
        s.insert(1, 1, 0);
        s.insert(3, 3, 0);
        snapshot(&s);
        s.insert(1, 10, 0); // changed here after the snapshot
        s.adopt(at(vec![(1, 100, 0), (2, 200, 0)]), vec![1, 3], 0);
        assert!(matches!(s.get(&1, 0), Lookup::Hit(10)));
        assert!(matches!(s.get(&2, 0), Lookup::Hit(200)));
        assert!(matches!(s.get(&3, 0), Lookup::Miss));
    }
}
