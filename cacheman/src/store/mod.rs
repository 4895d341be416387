//! The lowest layer: where a cache's entries live, behind one seam ([`Store`]), and the file
//! store, the default: one file per cache, its format, its codec, and how it is written and
//! read. Nothing here knows about managers or dependency graphs.

mod codec;
mod file_store;
pub(crate) mod files;
pub(crate) mod format;
pub(crate) mod fuzz;
pub(crate) mod journal;
mod merge;
#[cfg(test)]
mod power_loss;
#[cfg(feature = "redis")]
pub(crate) mod redis;
mod shared;
mod stream;

use crate::shards::RowMeta;
use std::fs;
use std::io;
use std::path::Path;

pub use codec::Codec;
pub(crate) use file_store::FileStore;
pub(crate) use merge::{FileStamp, Journal, Merged};
pub(crate) use shared::{Fetched, SharedEntries, Ticket};

use crate::shards::Sink;

use crate::Error;
use format::Header;
use stream::Streamed;

/// Rows read back from a file.
pub(crate) struct Loaded<K, V> {
    /// Key, value, insertion stamp in Unix milliseconds (0 when the file has none).
    pub rows: Vec<(K, V, RowMeta)>,
    pub epoch: u64,
}

/// A snapshot's entries: cloned rows, or a payload the file store wrote to a temporary file
/// while the shards were copied ([`Store::encoder`]).
pub(crate) enum Rows<K, V> {
    Decoded(Vec<(K, V, RowMeta)>),
    Encoded(Streamed),
}

impl<K, V> Rows<K, V> {
    pub(crate) fn count(&self) -> u64 {
        match self {
            Rows::Decoded(rows) => rows.len() as u64,
            Rows::Encoded(encoded) => encoded.rows,
        }
    }
}

/// Takes a snapshot straight into a storage's own format.
pub(crate) trait Encoder<K, V>: Sink<K, V, Error = Error> + Send {
    fn finish(self: Box<Self>) -> Result<Rows<K, V>, Error>;
}

/// A snapshot on its way to storage.
pub(crate) struct Outgoing<K, V> {
    pub rows: Rows<K, V>,
    pub epoch: u64,
    /// With a journal, the save merges with what other processes saved since our last sync;
    /// without, it writes the rows as they are.
    pub journal: Option<Journal<K>>,
}

/// A save's changes since the last one, for a store that takes them ([`Store::append`]).
pub(crate) struct Changes<K, V> {
    /// Rows of the keys inserted or replaced.
    pub rows: Vec<(K, V, RowMeta)>,
    /// Keys removed (or evicted, or expired) that the last sync may have stored.
    pub removed: Vec<K>,
    pub epoch: u64,
}

/// What the first phase of a compaction that blocks no save found (see
/// [`Store::begin_compaction`]): the snapshot and journal it started from, which the last phase
/// checks are still in place.
pub(crate) struct Compacting {
    /// The snapshot as the first phase saw it.
    pub(crate) stamp: FileStamp,
    /// Its journal generation; the compaction writes the next one.
    pub(crate) generation: u64,
    /// Its invalidation epoch, which the new snapshot keeps.
    pub(crate) epoch: u64,
    /// Where the journal's frames ended: the snapshot being written holds what they saved,
    /// and the frames appended after this are carried into the new journal.
    pub(crate) offset: u64,
}

/// The first phase of a compaction: what other processes saved since the last sync (to adopt,
/// as after an append), and, when a compaction is to go on, where it started and the encoder
/// its snapshot is to be copied into (writing a temporary file; no lock is held).
pub(crate) struct Begun<K, V> {
    pub merged: Merged<K, V>,
    pub compaction: Option<(Compacting, Box<dyn Encoder<K, V>>)>,
}

/// The storage seam: everything a cache asks of the place its entries live, and all that the
/// layers above know of it. A cache holds one `Box<dyn Store<K, V>>` (or none: a memory cache),
/// built at registration where the serde bounds are known, so that a cache handle needs none.
///
/// Each call is one step for other processes too: an implementation takes whatever lock its
/// medium has (the file store: `<name>.lock`) for the call's length. Calls of one cache are
/// serialized by the cache's save lock above.
///
/// What each operation means per implementation is in docs/ARCHITECTURE.md ("The storage
/// seam"): the file store ([`FileStore`]) appends changes to a journal beside a snapshot,
/// writes whole snapshots to compact it, and merges with other processes' saves; a shared
/// store (Redis) holds entries one by one.
pub(crate) trait Store<K, V>: Send + Sync {
    /// What is stored, with the invalidation epoch it was written at. `Ok(None)`: nothing is.
    fn load(&self) -> Result<Option<Loaded<K, V>>, Error>;
    /// An encoder for the next save's snapshot, when this store takes one (the file store
    /// with postcard): the entries are encoded and written out as they are copied out of the
    /// shards, not cloned first. `None`: the snapshot is cloned rows.
    fn encoder(&self) -> Result<Option<Box<dyn Encoder<K, V>>>, Error> {
        Ok(None)
    }
    /// Stores a snapshot durably, merging first when it carries a journal of this process's
    /// changes; returns what the merge found that others stored.
    fn save(&self, outgoing: Outgoing<K, V>) -> Result<Merged<K, V>, Error>;
    /// Whether a save may send only the changes since the last one ([`Store::append`]) rather
    /// than a whole snapshot.
    fn takes_changes(&self) -> bool {
        false
    }
    /// Stores a save's changes durably, and returns what other processes stored since the
    /// last sync (adopted above the seam, as a merge's result is). `Ok(None)`: nothing was
    /// written, and this save must send a whole snapshot ([`Store::save`]) instead: there is
    /// none yet, it is unreadable, or the epoch or a clear says the changes alone would not do.
    fn append(&self, _changes: Changes<K, V>) -> Result<Option<Merged<K, V>>, Error> {
        Ok(None)
    }
    /// Whether the changes appended since the last whole snapshot have grown enough that a
    /// whole snapshot ([`Store::save`], a compaction) should replace them.
    fn compaction_due(&self) -> bool {
        false
    }
    /// Whether the appended changes have grown to twice what makes a compaction due: saves
    /// append faster than compactions that let them go on keep up with.
    fn compaction_overdue(&self) -> bool {
        false
    }
    /// A compaction's first phase (docs/ARCHITECTURE.md, "The journal"): under the store's
    /// lock, reads what other processes saved since the last sync and notes where the
    /// journal ends. `Ok(None)`: this store compacts only by [`Store::save`].
    fn begin_compaction(&self, _epoch: u64) -> Result<Option<Begun<K, V>>, Error> {
        Ok(None)
    }
    /// What the snapshot and journal a compaction started from hold for `keys` (keys changed
    /// in memory since, whose rows the compaction copied may be unsaved): their rows, and
    /// as removed those they lack but the snapshot `written` holds. Read without the lock.
    /// `Ok(None)`: the files were replaced since, and the compaction is moot.
    fn saved_rows(
        &self,
        _compacting: &Compacting,
        _keys: Vec<K>,
        _written: &mut Rows<K, V>,
    ) -> Result<Option<Changes<K, V>>, Error> {
        Ok(None)
    }
    /// A compaction's last phase: under the store's lock, puts `rows` in place as the new
    /// snapshot, with a new journal that starts with `saved` (the stored rows of keys whose
    /// copied rows may be unsaved) and carries every frame appended since the first phase.
    /// Returns what other processes saved since the last sync, to adopt; `Ok(None)`: the files
    /// were replaced since, and nothing was written.
    fn finish_compaction(
        &self,
        _compacting: Compacting,
        _rows: Rows<K, V>,
        _saved: Changes<K, V>,
    ) -> Result<Option<Merged<K, V>>, Error> {
        Ok(None)
    }
    /// Drops everything stored and records `epoch`, so that every process still holding
    /// entries from before drops them at its next load or save.
    fn invalidate(&self, epoch: u64) -> Result<(), Error>;
    /// Removes what is stored, epoch and all.
    fn delete(&self) -> Result<(), Error>;
    /// A stable hash of `value`'s encoding (its stamp in the dependency graph), when this
    /// store can encode values.
    fn fingerprint(&self, _value: &V) -> Option<u64> {
        None
    }
    /// The per-entry operations of a store other hosts share (Redis), which the miss path,
    /// `insert` and `remove` use; `None` (files): entries live in memory and reach the store
    /// by `save`.
    fn shared(&self) -> Option<&dyn SharedEntries<K, V>> {
        None
    }
}

/// Identity written into, and demanded of, a cache file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Identity {
    pub codec: Codec,
    pub type_fingerprint: u64,
    pub fn_fingerprint: u64,
    /// Whether rows carry insertion stamps (caches with a time-to-live).
    pub stamped: bool,
    /// Whether rows this cache writes carry use counts (bounded caches, postcard): a flag in
    /// the file's header says so, so it is not part of the type fingerprint, and files with
    /// or without counts are read by caches with or without a capacity.
    pub counted: bool,
}

impl Identity {
    /// A fingerprint of the key and value types, and of whether rows are stamped (which changes
    /// the row layout).
    pub(crate) fn new<K, V>(codec: Codec, fn_fingerprint: u64, stamped: bool) -> Self {
        let type_fingerprint = format::fnv1a(&[
            std::any::type_name::<K>().as_bytes(),
            std::any::type_name::<V>().as_bytes(),
            if stamped { b"stamped" } else { b"plain" },
        ]);
        Identity {
            codec,
            type_fingerprint,
            fn_fingerprint,
            stamped,
            counted: false,
        }
    }

    /// The same, writing use counts in its rows if `counted` and the codec is postcard (JSON
    /// and CSV files keep their documents' shape).
    pub(crate) fn with_counts(self, counted: bool) -> Self {
        Identity {
            counted: counted && self.codec == Codec::Postcard,
            ..self
        }
    }

    /// How the postcard rows this cache writes are laid out.
    pub(crate) fn layout(&self) -> codec::Layout {
        codec::Layout::current(self.stamped, self.counted)
    }
}

/// Invalidates the file of a cache this process has not registered (so its types and codec are
/// unknown here): writes an empty file at an epoch above the old one and at least `now_ms`.
/// Any process holding the old contents drops them when it next saves or loads. The file is
/// written even when there was none, since another process may hold contents it never saved.
pub(crate) fn write_invalidation_marker(
    cache: &str,
    path: &Path,
    now_ms: u64,
) -> Result<(), Error> {
    let io_error = |action: &'static str, source: io::Error| Error::Io {
        cache: cache.to_owned(),
        action,
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        files::create_private_dir(dir).map_err(|e| io_error("create the cache directory", e))?;
    }
    let _lock = files::lock_beside(path).map_err(|e| io_error("lock the cache file", e))?;
    let journal = journal::path_beside(path);
    let old = match fs::read(path) {
        Ok(bytes) => Header::decode(&bytes).ok().map(|(header, _)| header),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(io_error("read the cache file", err)),
    };
    let marker = Header {
        version: format::FORMAT_VERSION,
        codec: old.map_or(0, |h| h.codec),
        type_fingerprint: old.map_or(0, |h| h.type_fingerprint),
        fn_fingerprint: old.map_or(0, |h| h.fn_fingerprint),
        epoch: old.map_or(0, |h| h.epoch + 1).max(now_ms),
        entries: 0,
        payload_len: 0,
        payload_crc: crc32fast::hash(&[]),
        counted: false,
        // Above any journal beside it, whose frames then no longer count.
        generation: old
            .map_or(0, |h| h.generation)
            .max(journal::generation_at(&journal).unwrap_or(0))
            + 1,
    };
    files::atomic_write(path, &[&marker.encode()], None)
        .map_err(|e| io_error("write the cache file", e))?;
    journal::remove(&journal).map_err(|e| io_error("remove the journal", e))
}
