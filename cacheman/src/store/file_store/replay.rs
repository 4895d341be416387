//! A journal's frames folded into the final state of each key they name: what a load lays over
//! the snapshot's rows, and what an append adopts of other processes' saves.

use crate::shards::RowMeta;
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

use crate::shards::Hasher;
use crate::store::journal::Frame;

/// The final state of each key some frames name (`None`: removed).
pub(crate) struct Replayed<K, V> {
    /// Each key, with the position of its state in `states`: the table a load looks every
    /// snapshot key up in holds no values, so that it takes fewer cache lines (a hit reads
    /// one slot, not a slot and then the state).
    index: HashTable<(K, usize)>,
    /// In the order each key was first named.
    states: Vec<Option<(V, RowMeta)>>,
    hasher: Hasher,
}

impl<K: Hash + Eq, V> Default for Replayed<K, V> {
    fn default() -> Self {
        Replayed::with_capacity(0)
    }
}

impl<K: Hash + Eq, V> Replayed<K, V> {
    /// Room for `keys` keys.
    pub(crate) fn with_capacity(keys: usize) -> Self {
        Replayed {
            states: Vec::with_capacity(keys),
            index: HashTable::with_capacity(keys),
            hasher: Hasher::default(),
        }
    }

    /// Folds in `frame`, the next one: its removals, then its rows.
    pub(crate) fn fold(&mut self, frame: Frame<K, V>) {
        for key in frame.removed {
            self.set(key, None);
        }
        for (key, value, meta) in frame.rows {
            self.set(key, Some((value, meta)));
        }
    }

    fn set(&mut self, key: K, state: Option<(V, RowMeta)>) {
        let hash = self.hasher.hash_one(&key);
        let hasher = &self.hasher;
        match self.index.find(hash, |(named, _)| *named == key) {
            Some(&(_, at)) => self.states[at] = state,
            None => {
                self.index
                    .insert_unique(hash, (key, self.states.len()), |(k, _)| hasher.hash_one(k));
                self.states.push(state);
            }
        }
    }

    /// Whether the frames name `key`.
    pub(crate) fn contains(&self, key: &K) -> bool {
        let hash = self.hasher.hash_one(key);
        self.index.find(hash, |(named, _)| named == key).is_some()
    }

    /// How many keys the frames name.
    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }

    /// Each key named, with its final state.
    pub(crate) fn into_states(self) -> impl Iterator<Item = (K, Option<(V, RowMeta)>)> {
        let mut states = self.states;
        self.index
            .into_iter()
            .map(move |(key, at)| (key, states[at].take()))
    }

    /// The rows of the keys whose final state is a value.
    pub(crate) fn into_rows(self) -> impl Iterator<Item = (K, V, RowMeta)> {
        self.into_states()
            .filter_map(|(key, state)| state.map(|(value, meta)| (key, value, meta)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rows: &[(u32, &str)], removed: &[u32]) -> Frame<u32, String> {
        Frame {
            rows: rows
                .iter()
                .map(|(k, v)| (*k, v.to_string(), RowMeta::default()))
                .collect(),
            removed: removed.to_vec(),
        }
    }

    #[test]
    fn later_frames_win_and_a_frame_removes_before_it_puts() {
        let mut replayed = Replayed::default();
        replayed.fold(frame(&[(1, "a"), (2, "b")], &[]));
        replayed.fold(frame(&[(3, "c")], &[1, 2]));
        // Removed and put back in one frame: put back.
        replayed.fold(frame(&[(2, "b2")], &[2, 3]));
        assert_eq!(replayed.len(), 3);
        assert!(replayed.contains(&1) && replayed.contains(&3) && !replayed.contains(&4));
        let mut states: Vec<_> = replayed.into_states().collect();
        states.sort();
        assert_eq!(
            states,
            vec![
                (1, None),
                (2, Some(("b2".to_string(), RowMeta::default()))),
                (3, None)
            ]
        );
    }
}
