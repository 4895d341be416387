//! A load's matching of a large journal's keys against its snapshot's, as a radix-partitioned
//! hash join: each side's keys are hashed once and scattered by their hash into partitions
//! small enough that one partition's table of journal keys stays in the CPU's cache; each
//! partition then finds, by exact key comparison, the last entry of each journal key and the
//! snapshot rows a journal entry replaces; the snapshot's values are decoded in file order
//! after that, those replaced stepped over by their length (sized rows only: snapshot format
//! version 4, journal version 2).
//!
//! One table of every journal key, looked up by each snapshot key, reads that table at random:
//! for half a million journal keys (a table of 10-20 MB), the lookups of a million snapshot
//! keys cost about as much as decoding every value (BENCHMARKS.md, workload 10). Here every
//! pass over a large array is sequential: decoding, scattering into partitions (one write
//! stream per partition), and gathering back in file order (one read stream per partition).
//! Below [`JOIN_FROM`] journal entries the one table fits in the cache anyway, and the simple
//! path (`replay.rs`) costs less.

use crate::shards::RowMeta;
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use serde::de::DeserializeOwned;

use crate::store::codec::{self, Layout};
use crate::store::journal::Frame;

/// Journal entries from which a load partitions (fewer: one table of them all, `Replayed`).
pub(super) const JOIN_FROM: usize = 16 * 1024;

/// Journal entries aimed at per partition: its table and entries (about 100 KB for small
/// keys) stay in a core's L2 cache while the partition's snapshot keys probe it.
const ENTRIES_PER_PARTITION: usize = 4 * 1024;

/// At most 2^12 partitions: more write streams than that thrash the TLB while scattering.
const MAX_PARTITION_BITS: u32 = 12;

/// A partition is picked by the hash's bits from here up: a partition's table takes a
/// bucket from the low bits and a control byte from the top 7 (hashbrown), which must still
/// differ between the keys of one partition.
const PARTITION_SHIFT: u32 = 40;

/// One key of either side, with its hash.
struct Entry<K> {
    hash: u64,
    key: K,
    /// Journal side: this is the last entry of its key. Snapshot side: a journal entry names
    /// this row's key (the row is replaced or removed).
    marked: bool,
}

/// Keys scattered into partitions by hash, in the order they came within each partition.
struct Partitions<K> {
    parts: Vec<Vec<Entry<K>>>,
    /// The partition of each key, in the order the keys came: gathers them back.
    order: Vec<u16>,
    mask: u64,
}

impl<K> Partitions<K> {
    /// `2^bits` partitions, with room for `expected` keys over all of them.
    fn new(bits: u32, expected: usize) -> Self {
        let count = 1usize << bits;
        // Hashes spread keys evenly; a partition that outgrows its share grows as a vector.
        let each = expected / count + expected / count / 8 + 16;
        Partitions {
            parts: (0..count).map(|_| Vec::with_capacity(each)).collect(),
            order: Vec::with_capacity(expected),
            mask: (count - 1) as u64,
        }
    }

    fn push(&mut self, hash: u64, key: K) {
        let part = ((hash >> PARTITION_SHIFT) & self.mask) as usize;
        self.parts[part].push(Entry {
            hash,
            key,
            marked: false,
        });
        self.order.push(part as u16);
    }

    /// Every key and its mark, in the order they were pushed.
    fn into_ordered(self) -> impl Iterator<Item = (K, bool)> {
        let mut parts: Vec<_> = self.parts.into_iter().map(Vec::into_iter).collect();
        self.order.into_iter().map(move |part| {
            let entry = parts[usize::from(part)]
                .next()
                .expect("each partition holds one entry per time `order` names it");
            (entry.key, entry.marked)
        })
    }
}

/// Marks, partition by partition, each journal key's last entry (later entries win) and each
/// snapshot key that some journal entry names. Keys are compared with `==` whenever their
/// hashes are equal: equal hashes alone never match. Returns how many entries of both sides
/// are left unmarked in the snapshot and marked in the journal: the most rows a load keeps.
fn join<K: Eq>(journal: &mut Partitions<K>, snapshot: &mut Partitions<K>) -> usize {
    let mut table = HashTable::<usize>::new();
    let mut kept = 0;
    for (theirs, ours) in journal.parts.iter_mut().zip(&mut snapshot.parts) {
        table.clear();
        for at in 0..theirs.len() {
            let hash = theirs[at].hash;
            let same = |&i: &usize| theirs[i].hash == hash && theirs[i].key == theirs[at].key;
            match table.find_mut(hash, same) {
                Some(last) => {
                    theirs[*last].marked = false;
                    *last = at;
                }
                None => {
                    table.insert_unique(hash, at, |&i| theirs[i].hash);
                }
            }
            theirs[at].marked = true;
        }
        for entry in ours.iter_mut() {
            let same = |&i: &usize| theirs[i].hash == entry.hash && theirs[i].key == entry.key;
            entry.marked = table.find(entry.hash, same).is_some();
            kept += usize::from(!entry.marked);
        }
        kept += table.len();
    }
    kept
}

/// How many bits of partitions for `entries` journal entries.
fn partition_bits(entries: usize) -> u32 {
    let parts = (entries / ENTRIES_PER_PARTITION).max(1).next_power_of_two();
    parts.trailing_zeros().min(MAX_PARTITION_BITS)
}

/// The rows of a snapshot's payload of `count` sized rows laid out as `layout` says, with
/// `frames` (a journal's, in order) replayed over them: the snapshot's rows in file order less
/// those the frames name, then the rows of the frames' last puts in journal order. Each
/// frame removes its keys before it puts its rows. Keys are hashed by `hasher`.
pub(super) fn replay_over<K, V, S>(
    payload: &[u8],
    count: u64,
    layout: Layout,
    frames: Vec<Frame<K, V>>,
    hasher: &S,
) -> Result<Vec<(K, V, RowMeta)>, String>
where
    K: Hash + Eq + DeserializeOwned + 'static,
    V: DeserializeOwned + 'static,
    S: BuildHasher,
{
    let named = frames.iter().map(|f| f.rows.len() + f.removed.len()).sum();
    replay_partitioned(
        payload,
        count,
        layout,
        frames,
        hasher,
        partition_bits(named),
    )
}

/// [`replay_over`] with `2^bits` partitions.
fn replay_partitioned<K, V, S>(
    payload: &[u8],
    count: u64,
    layout: Layout,
    frames: Vec<Frame<K, V>>,
    hasher: &S,
    bits: u32,
) -> Result<Vec<(K, V, RowMeta)>, String>
where
    K: Hash + Eq + DeserializeOwned + 'static,
    V: DeserializeOwned + 'static,
    S: BuildHasher,
{
    debug_assert!(layout.sized, "only sized rows are stepped over unread");
    let named = frames.iter().map(|f| f.rows.len() + f.removed.len()).sum();
    // The journal's keys into partitions, their states kept in journal order.
    let mut journal = Partitions::new(bits, named);
    let mut states = Vec::with_capacity(named);
    for frame in frames {
        for key in frame.removed {
            journal.push(hasher.hash_one(&key), key);
            states.push(None);
        }
        for (key, value, meta) in frame.rows {
            journal.push(hasher.hash_one(&key), key);
            states.push(Some((value, meta)));
        }
    }
    // The snapshot's keys into partitions, with where each row's value starts; values are
    // stepped over (and their lengths checked) for now.
    let affordable = payload.len() / std::mem::size_of::<(K, usize)>().max(1);
    let rows = usize::try_from(count).unwrap_or(usize::MAX).min(affordable);
    let mut snapshot = Partitions::new(bits, rows);
    let mut tails = Vec::with_capacity(rows);
    let mut rest = payload;
    for at in 0..count {
        let row = |e: String| format!("row {at} of {count}: {e}");
        let (key, tail) = postcard::take_from_bytes::<K>(rest).map_err(|e| row(e.to_string()))?;
        tails.push(payload.len() - tail.len());
        (_, _, rest) = codec::postcard_row_tail::<V>(tail, layout, true).map_err(row)?;
        snapshot.push(hasher.hash_one(&key), key);
    }
    if !rest.is_empty() {
        return Err(format!(
            "{} unexpected bytes after the last of {count} entries",
            rest.len()
        ));
    }
    let kept = join(&mut journal, &mut snapshot);
    // The snapshot's rows kept, decoded in file order, then the journal's last puts.
    let mut out = Vec::with_capacity(kept);
    for ((key, replaced), tail) in snapshot.into_ordered().zip(tails) {
        if replaced {
            continue;
        }
        let (value, meta, _) = codec::postcard_row_tail::<V>(&payload[tail..], layout, false)?;
        if let Some(value) = value {
            out.push((key, value, meta));
        }
    }
    for ((key, last), state) in journal.into_ordered().zip(states) {
        if let (true, Some((value, meta))) = (last, state) {
            out.push((key, value, meta));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
