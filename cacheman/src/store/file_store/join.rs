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
//! While the one table would fit in a core's cache ([`partitions_pay`]), its lookups are
//! cheap, and the simple path (`replay.rs`) costs less than a second pass over the snapshot.

use crate::shards::RowMeta;
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use serde::de::DeserializeOwned;

use crate::store::codec::{self, Layout};
use crate::store::journal;

/// The size of one table of every journal key from which a load partitions instead
/// (BENCHMARKS.md, workload 10: the two ways cross between 64K and 128K `u64` keys).
const JOIN_FROM_BYTES: usize = 2 << 20;

/// Whether a journal of `entries` entries (puts and removals) of keys `K` is matched by
/// partitions: one table of them all (`Replayed`: each key and a position, and a control
/// byte) would outgrow [`JOIN_FROM_BYTES`], so that the snapshot's lookups in it would
/// miss the cache.
pub(super) fn partitions_pay<K>(entries: usize) -> bool {
    let slot = std::mem::size_of::<(K, usize)>() + 1;
    entries.saturating_mul(slot) >= JOIN_FROM_BYTES
}

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

    /// How many entries are marked.
    fn marked(&self) -> usize {
        self.parts.iter().flatten().filter(|e| e.marked).count()
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

/// Sized rows (snapshot format version 4, journal version 2) back to back.
#[derive(Clone, Copy)]
pub(crate) struct SizedRows<'a> {
    pub bytes: &'a [u8],
    pub count: u64,
    pub layout: Layout,
}

/// What failed to decode, on which side.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Damage {
    /// Frame `frame` of the journal (counted from the first one given).
    Journal {
        frame: usize,
        message: String,
    },
    Snapshot(String),
}

/// The rows of `snapshot` with the frames of a journal replayed over them (`frames`: their
/// bodies, in order, their rows laid out as `layout` says): the snapshot's rows in file order
/// less those the frames name, then the rows of the frames' last puts in journal order.
/// Each frame removes its keys before it puts its rows. Only the values kept are decoded.
/// Keys are hashed by `hasher`.
#[cfg(test)]
pub(super) fn replay_over<K, V, S>(
    snapshot: SizedRows<'_>,
    frames: &[&[u8]],
    layout: Layout,
    hasher: &S,
) -> Result<Vec<(K, V, RowMeta)>, Damage>
where
    K: Hash + Eq + DeserializeOwned + 'static,
    V: DeserializeOwned + 'static,
    S: BuildHasher,
{
    Joined::new(snapshot, frames, layout, hasher, None)?.into_rows(snapshot)
}

/// How many entries (puts and removals) `frames` hold, by their heads; a frame whose head
/// does not check out counts none (decoding it reports it).
pub(super) fn entries_of(frames: &[&[u8]]) -> usize {
    let entries = |body| journal::body_parts(body).map_or(0, |p| p.rows + p.removed);
    let total: u64 = frames.iter().map(|body| entries(body)).sum();
    usize::try_from(total).unwrap_or(usize::MAX)
}

/// A replay half done: the journal's last puts decoded, each snapshot row marked if the
/// journal names its key. Holds nothing of the journal's bytes, which can go before the
/// snapshot's values are decoded ([`Joined::into_rows`]).
pub(crate) struct Joined<K, V> {
    /// The journal's last puts, in journal order.
    theirs: Vec<(K, V, RowMeta)>,
    /// The snapshot's keys, marked when replaced.
    ours: Partitions<K>,
    /// Where each snapshot row's value starts in the payload, in file order.
    tails: Vec<usize>,
    /// Rows the replay keeps, at most.
    kept: usize,
}

impl<K, V> Joined<K, V>
where
    K: Hash + Eq + DeserializeOwned + 'static,
    V: DeserializeOwned + 'static,
{
    /// Matches `frames` against `snapshot`, as [`replay_over`] says, with `2^bits`
    /// partitions (`None`: as many as the journal's size asks).
    pub(crate) fn new<S: BuildHasher>(
        snapshot: SizedRows<'_>,
        frames: &[&[u8]],
        layout: Layout,
        hasher: &S,
        bits: Option<u32>,
    ) -> Result<Self, Damage> {
        debug_assert!(snapshot.layout.sized && layout.sized);
        // Bounded by the bytes: every entry takes one at least.
        let bytes: usize = frames.iter().map(|body| body.len()).sum();
        let named = entries_of(frames).min(bytes);
        let bits = bits.unwrap_or_else(|| partition_bits(named));
        // The journal's keys into partitions, with where each put's value starts.
        let mut journal = Partitions::new(bits, named);
        let mut puts: Vec<Option<&[u8]>> = Vec::with_capacity(named);
        for (at, body) in frames.iter().enumerate() {
            let damage = |message| Damage::Journal { frame: at, message };
            let parts = journal::body_parts(body).map_err(damage)?;
            let removed = |e: String| damage(format!("removed key: {e}"));
            let mut keys = parts.keys_bytes;
            for _ in 0..parts.removed {
                let (key, rest) =
                    postcard::take_from_bytes::<K>(keys).map_err(|e| removed(e.to_string()))?;
                keys = rest;
                journal.push(hasher.hash_one(&key), key);
                puts.push(None);
            }
            if !keys.is_empty() {
                let left = keys.len();
                return Err(damage(format!("{left} bytes after the frame's last key")));
            }
            let rows = SizedRows {
                bytes: parts.rows_bytes,
                count: parts.rows,
                layout,
            };
            scatter::<K, V, S>(rows, hasher, &mut journal, |tail| puts.push(Some(tail)))
                .map_err(damage)?;
        }
        // The snapshot's keys into partitions, with where each value starts; values are
        // stepped over (and their lengths checked) for now.
        let affordable = snapshot.bytes.len() / std::mem::size_of::<(K, usize)>().max(1);
        let rows = usize::try_from(snapshot.count)
            .unwrap_or(usize::MAX)
            .min(affordable);
        let mut ours = Partitions::new(bits, rows);
        let mut tails = Vec::with_capacity(rows);
        let payload_len = snapshot.bytes.len();
        scatter::<K, V, S>(snapshot, hasher, &mut ours, |tail| {
            tails.push(payload_len - tail.len())
        })
        .map_err(Damage::Snapshot)?;
        let kept = join(&mut journal, &mut ours);
        let mut theirs = Vec::with_capacity(journal.marked());
        for ((key, last), put) in journal.into_ordered().zip(puts) {
            if let (true, Some(tail)) = (last, put) {
                let damage = |message| Damage::Journal {
                    frame: frame_holding(frames, tail),
                    message,
                };
                let (value, meta) = value_at::<V>(tail, layout).map_err(damage)?;
                theirs.push((key, value, meta));
            }
        }
        Ok(Joined {
            theirs,
            ours,
            tails,
            kept,
        })
    }

    /// The replay's rows: the rows of `snapshot` (the one given to [`Joined::new`]) not
    /// replaced, decoded in file order, then the journal's last puts.
    pub(crate) fn into_rows(self, snapshot: SizedRows<'_>) -> Result<Vec<(K, V, RowMeta)>, Damage> {
        let Joined {
            mut theirs,
            ours,
            tails,
            kept,
        } = self;
        let mut out = Vec::with_capacity(kept);
        for ((key, replaced), tail) in ours.into_ordered().zip(tails) {
            if replaced {
                continue;
            }
            let tail = snapshot.bytes.get(tail..).unwrap_or_default();
            let (value, meta) = value_at::<V>(tail, snapshot.layout).map_err(Damage::Snapshot)?;
            out.push((key, value, meta));
        }
        out.append(&mut theirs);
        Ok(out)
    }
}

/// Which of `frames` holds the bytes `part` starts with (for an error's message).
fn frame_holding(frames: &[&[u8]], part: &[u8]) -> usize {
    let at = part.as_ptr() as usize;
    frames
        .iter()
        .position(|body| {
            (body.as_ptr() as usize..body.as_ptr() as usize + body.len()).contains(&at)
        })
        .unwrap_or(0)
}

/// Pushes the key of each of `rows` into `partitions`, and hands where its value starts to
/// `tail`; values are stepped over (their lengths checked), not decoded.
fn scatter<'a, K, V, S>(
    rows: SizedRows<'a>,
    hasher: &S,
    partitions: &mut Partitions<K>,
    mut tail: impl FnMut(&'a [u8]),
) -> Result<(), String>
where
    K: Hash + DeserializeOwned + 'static,
    V: DeserializeOwned + 'static,
    S: BuildHasher,
{
    let SizedRows {
        bytes,
        count,
        layout,
    } = rows;
    let mut rest = bytes;
    for at in 0..count {
        let row = |e: String| format!("row {at} of {count}: {e}");
        let (key, value) = postcard::take_from_bytes::<K>(rest).map_err(|e| row(e.to_string()))?;
        (_, _, rest) = codec::postcard_row_tail::<V>(value, layout, true).map_err(row)?;
        tail(value);
        partitions.push(hasher.hash_one(&key), key);
    }
    match rest.len() {
        0 => Ok(()),
        left => Err(format!(
            "{left} unexpected bytes after the last of {count} entries"
        )),
    }
}

/// Decodes the value, stamp and use count at the front of `tail`, which was stepped over
/// before (so holds them).
fn value_at<V: DeserializeOwned + 'static>(
    tail: &[u8],
    layout: Layout,
) -> Result<(V, RowMeta), String> {
    match codec::postcard_row_tail::<V>(tail, layout, false)? {
        (Some(value), meta, _) => Ok((value, meta)),
        (None, _, _) => Err("a value read as skipped".into()),
    }
}

#[cfg(test)]
mod tests;
