//! A load's replay of a journal over a snapshot of sized rows (snapshot format version 4,
//! journal version 2), in one pass over each: the journal's keys are indexed first, in a probe
//! table of their last entries; then each snapshot row's key is looked up in it as the row is
//! read, and only the values of the rows the journal does not name are decoded (the others
//! are stepped over by their length); the journal's last puts are decoded and added at the
//! end.
//!
//! The probe table is built for this: a slot is one `u64` (32 bits of the key's hash and the
//! entry's position), so that half a million journal keys take an 8 MB table, and rows are
//! looked up in batches whose slots are prefetched first, so that the lookups of a batch wait
//! for memory together rather than one after another. A table of the keys and values
//! themselves (`replay.rs`, still used for older files and for journals small enough that it
//! stays in the cache, [`index_pays`]) is larger, and looked up one row at a time its lookups
//! cost about as much as decoding every value (BENCHMARKS.md, workload 10).

use crate::shards::RowMeta;
use std::hash::{BuildHasher, Hash};

use serde::de::DeserializeOwned;

use crate::store::codec::{self, Layout};
use crate::store::journal;

/// Rows looked up together: their slots are prefetched before the first is probed. Enough
/// to keep several reads of memory in flight, few enough that the batch's rows stay in L1.
const BATCH: usize = 16;

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

/// The size of one table of every journal key (`replay.rs`) from which a load indexes the
/// journal instead (BENCHMARKS.md, workload 10: below it the one table stays in the cache
/// and costs less per snapshot row than a lookup in batches).
const INDEX_FROM_BYTES: usize = 2 << 20;

/// Whether a journal of `entries` entries (puts and removals) of keys `K` is replayed
/// through the index: one table of them all (`Replayed`: each key and a position, and a
/// control byte) would outgrow [`INDEX_FROM_BYTES`], and the index can hold them.
pub(super) fn index_pays<K>(entries: usize) -> bool {
    let slot = std::mem::size_of::<(K, usize)>() + 1;
    entries.saturating_mul(slot) >= INDEX_FROM_BYTES && indexable(entries)
}

/// Whether a journal of `entries` entries (puts and removals) can be indexed: a slot holds
/// an entry's position in 32 bits. (Four billion entries is a journal of over 4 GB; a larger
/// one is replayed through `replay.rs`.)
pub(super) fn indexable(entries: usize) -> bool {
    entries < u32::MAX as usize
}

/// How many entries (puts and removals) `frames` hold, by their heads; a frame whose head
/// does not check out counts none (decoding it reports it).
pub(super) fn entries_of(frames: &[&[u8]]) -> usize {
    let entries = |body| journal::body_parts(body).map_or(0, |p| p.rows + p.removed);
    let total: u64 = frames.iter().map(|body| entries(body)).sum();
    usize::try_from(total).unwrap_or(usize::MAX)
}

/// The rows of `snapshot` with the frames of a journal replayed over them (`frames`: their
/// bodies, in order, their rows laid out as `layout` says): the snapshot's rows in file order
/// less those the frames name, then the rows of the frames' last puts in journal order. Each
/// frame removes its keys before it puts its rows. Only the values kept are decoded. Keys are
/// hashed by `hasher`; keys with equal hashes are told apart by `==`.
pub(crate) fn replay_over<K, V, S>(
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
    debug_assert!(snapshot.layout.sized && layout.sized);
    let index = JournalIndex::<K>::new(frames, layout, hasher)?;
    // Bounded by the bytes, as every decoder reserves.
    let affordable = snapshot.bytes.len() / std::mem::size_of::<(K, V, RowMeta)>().max(1);
    let rows = usize::try_from(snapshot.count)
        .unwrap_or(usize::MAX)
        .min(affordable);
    let mut out = Vec::with_capacity(rows.saturating_add(index.keys.len()));
    index
        .keep_unnamed::<V, S>(snapshot, hasher, &mut out)
        .map_err(Damage::Snapshot)?;
    index.push_last_puts(frames, layout, &mut out)?;
    Ok(out)
}

/// A journal's entries in order, and a probe table of each key's last entry.
struct JournalIndex<'a, K> {
    /// Every entry's key, in journal order.
    keys: Vec<K>,
    /// Where each entry's value starts in its frame (`None`: a removal).
    puts: Vec<Option<&'a [u8]>>,
    /// Open addressing with linear probing, at most half full: 0 is an empty slot; else the
    /// hash's top 32 bits, then 1 + the position of the key's last entry.
    table: Vec<u64>,
}

impl<'a, K: Hash + Eq + DeserializeOwned + 'static> JournalIndex<'a, K> {
    /// Reads every entry's key of `frames` (values stepped over, their lengths checked) and
    /// indexes the last entry of each.
    fn new<S: BuildHasher>(
        frames: &[&'a [u8]],
        layout: Layout,
        hasher: &S,
    ) -> Result<Self, Damage> {
        // Bounded by the bytes: every entry takes one at least.
        let bytes: usize = frames.iter().map(|body| body.len()).sum();
        let named = entries_of(frames).min(bytes);
        let (mut keys, mut puts) = (Vec::with_capacity(named), Vec::with_capacity(named));
        for (at, body) in frames.iter().enumerate() {
            let damage = |message| Damage::Journal { frame: at, message };
            let parts = journal::body_parts(body).map_err(damage)?;
            let mut rest = parts.keys_bytes;
            for _ in 0..parts.removed {
                let (key, after) = postcard::take_from_bytes::<K>(rest)
                    .map_err(|e| damage(format!("removed key: {e}")))?;
                rest = after;
                keys.push(key);
                puts.push(None);
            }
            if !rest.is_empty() {
                let left = rest.len();
                return Err(damage(format!("{left} bytes after the frame's last key")));
            }
            let rows = SizedRows {
                bytes: parts.rows_bytes,
                count: parts.rows,
                layout,
            };
            read_rows::<K>(rows, |key, tail, _, _| {
                keys.push(key);
                puts.push(Some(tail));
                Ok(())
            })
            .map_err(damage)?;
        }
        if !indexable(keys.len()) {
            return Err(Damage::Journal {
                frame: frames.len().saturating_sub(1),
                message: format!("{} entries are more than a load indexes", keys.len()),
            });
        }
        let slots = (keys.len() * 2).max(BATCH).next_power_of_two();
        let mut index = JournalIndex {
            keys,
            puts,
            table: vec![0; slots],
        };
        let mut hashes = [0u64; BATCH];
        for start in (0..index.keys.len()).step_by(BATCH) {
            let batch = &index.keys[start..(start + BATCH).min(index.keys.len())];
            for (hash, key) in hashes.iter_mut().zip(batch) {
                *hash = hasher.hash_one(key);
                prefetch(&index.table[index.slot_of(*hash)]);
            }
            for (at, &hash) in hashes.iter().enumerate().take(batch.len()) {
                index.insert_last(start + at, hash);
            }
        }
        Ok(index)
    }

    fn slot_of(&self, hash: u64) -> usize {
        // The low bits pick the slot; the high 32 are the slot's tag.
        (hash as usize) & (self.table.len() - 1)
    }

    /// The slot of `key` (with `hash`), and the position of its last entry (`None`: the
    /// empty slot where it would go).
    fn probe(&self, key: &K, hash: u64) -> (usize, Option<usize>) {
        let tag = hash >> 32;
        let mask = self.table.len() - 1;
        let mut slot = self.slot_of(hash);
        loop {
            let held = self.table[slot];
            if held == 0 {
                return (slot, None);
            }
            let at = (held & u64::from(u32::MAX)) as usize - 1;
            if held >> 32 == tag && self.keys[at] == *key {
                return (slot, Some(at));
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Makes entry `at` its key's last (later entries come later).
    fn insert_last(&mut self, at: usize, hash: u64) {
        let (slot, _) = self.probe(&self.keys[at], hash);
        self.table[slot] = (hash >> 32) << 32 | (at as u64 + 1);
    }

    /// Pushes the rows of `snapshot` whose keys no journal entry names onto `out`, in file
    /// order; the others' values are stepped over.
    fn keep_unnamed<V: DeserializeOwned + 'static, S: BuildHasher>(
        &self,
        snapshot: SizedRows<'_>,
        hasher: &S,
        out: &mut Vec<(K, V, RowMeta)>,
    ) -> Result<(), String> {
        let mut batch: Vec<(K, u64, &[u8], RowMeta)> = Vec::with_capacity(BATCH);
        let mut look_up = |batch: &mut Vec<(K, u64, &[u8], RowMeta)>| {
            for (key, hash, body, meta) in batch.drain(..) {
                if self.probe(&key, hash).1.is_none() {
                    out.push((key, codec::sized_value::<V>(body)?, meta));
                }
            }
            Ok::<_, String>(())
        };
        read_rows::<K>(snapshot, |key, _, body, meta| {
            let hash = hasher.hash_one(&key);
            prefetch(&self.table[self.slot_of(hash)]);
            batch.push((key, hash, body, meta));
            match batch.len() {
                BATCH => look_up(&mut batch),
                _ => Ok(()),
            }
        })?;
        look_up(&mut batch)
    }

    /// Pushes the journal's last puts onto `out`, in journal order, their values decoded.
    fn push_last_puts<V: DeserializeOwned + 'static>(
        self,
        frames: &[&[u8]],
        layout: Layout,
        out: &mut Vec<(K, V, RowMeta)>,
    ) -> Result<(), Damage> {
        let mut last = vec![false; self.keys.len()];
        for &held in self.table.iter().filter(|&&held| held != 0) {
            last[(held & u64::from(u32::MAX)) as usize - 1] = true;
        }
        let entries = self.keys.into_iter().zip(self.puts).zip(last);
        for ((key, put), last) in entries {
            if let (Some(tail), true) = (put, last) {
                let damage = |message| Damage::Journal {
                    frame: frame_holding(frames, tail),
                    message,
                };
                let (value, meta) = value_at::<V>(tail, layout).map_err(damage)?;
                out.push((key, value, meta));
            }
        }
        Ok(())
    }
}

/// Asks the CPU to bring `item`'s cache line in: a hint, which changes nothing else.
#[inline(always)]
fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 target has; it reads nothing the
    // program sees and never faults (the pointer is a reference's, valid anyway).
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((item as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
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

/// Hands each of `rows`' keys to `row`, with where its value starts (its length in front),
/// the value's bytes and the row's stamp and use count, until `row` fails; values are stepped
/// over (their lengths checked), not decoded.
fn read_rows<'a, K: DeserializeOwned + 'static>(
    rows: SizedRows<'a>,
    mut row: impl FnMut(K, &'a [u8], &'a [u8], RowMeta) -> Result<(), String>,
) -> Result<(), String> {
    let SizedRows {
        bytes,
        count,
        layout,
    } = rows;
    let mut rest = bytes;
    for at in 0..count {
        let failed = |e: String| format!("row {at} of {count}: {e}");
        let (key, tail) =
            postcard::take_from_bytes::<K>(rest).map_err(|e| failed(e.to_string()))?;
        let (body, meta, after) = codec::sized_row_tail(tail, layout).map_err(failed)?;
        rest = after;
        row(key, tail, body, meta)?;
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
