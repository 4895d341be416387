//! The default store: one file per cache, in cacheman's format (the snapshot), and with the
//! postcard codec a journal beside it that saves append their changes to (`journal.rs`);
//! whole snapshots (compactions) are merged with what other processes saved.

use crate::shards::RowMeta;
use std::fs::{self, File};
use std::io::{self, Read};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::format::{self, Header, Rejection};
use super::journal;
use super::merge::{self, FileStamp, Merged};
use super::stream::StreamEncoder;
use super::{
    Begun, Changes, Codec, Compacting, Encoder, Identity, Loaded, Outgoing, Rows, Store, codec,
    files,
};
use crate::Error;
use crate::shards::Sink;

/// `rows` less those whose key `superseded` names (asked once per row, in order).
fn retained<K, V>(
    mut rows: Vec<(K, V, RowMeta)>,
    superseded: impl Fn(&K) -> bool,
) -> Vec<(K, V, RowMeta)> {
    rows.retain(|(key, _, _)| !superseded(key));
    rows
}

/// A journal is compacted once it is larger than its snapshot and at least this large: a
/// compaction rewrites the snapshot, so it then costs at most about twice what the appends
/// since the last one wrote.
pub(crate) const COMPACT_FROM: u64 = 1 << 20;

use journaled::Seen;

/// The default storage: one file per cache, in cacheman's format.
pub(crate) struct FileStore<K, V> {
    cache: String,
    path: PathBuf,
    journal: PathBuf,
    /// Where a compaction writes the new snapshot's journal before its rename
    /// (`<name>.journal.next`, see `file_store/compaction.rs`).
    next_journal: PathBuf,
    identity: Identity,
    fault: Option<Arc<files::Fault>>,
    /// The files as this process last read or wrote them.
    seen: Mutex<Seen>,
    /// Smallest journal that is compacted ([`COMPACT_FROM`]; tests lower it).
    compact_from: u64,
    _rows: PhantomData<fn() -> (K, V)>,
}

impl<K, V> FileStore<K, V> {
    pub(crate) fn new(cache: &str, path: PathBuf, identity: Identity) -> Self {
        FileStore {
            cache: cache.to_owned(),
            journal: journal::path_beside(&path),
            next_journal: journal::next_path_beside(&path),
            path,
            identity,
            fault: None,
            seen: Mutex::new(Seen::default()),
            compact_from: COMPACT_FROM,
            _rows: PhantomData,
        }
    }

    /// Compacts journals from `bytes` on instead of [`COMPACT_FROM`]
    /// ([`CacheOptions::compact_from`](crate::CacheOptions::compact_from)).
    pub(crate) fn with_compaction_from(mut self, bytes: u64) -> Self {
        self.compact_from = bytes;
        self
    }

    /// Makes every save consult `fault` before each write, with the offset it writes at
    /// (tests only).
    #[cfg(test)]
    pub(crate) fn with_fault(
        self,
        fault: impl Fn(u64) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.with_steps(move |step| match step {
            files::Step::Write(offset) => fault(offset),
            _ => Ok(()),
        })
    }

    /// Makes every save consult `steps` before each step of writing the file: writes, the
    /// file's fsync, the rename, the directory's fsync (tests only).
    #[cfg(test)]
    pub(crate) fn with_steps(
        mut self,
        steps: impl Fn(files::Step<'_>) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.fault = Some(Arc::new(steps));
        self
    }

    /// Takes the save lock, creating the directory if needed, removes what crashed saves
    /// left behind, and finishes a compaction that a crash cut off between its two renames.
    fn lock(&self) -> Result<files::SaveLock, Error> {
        if let Some(dir) = self.path.parent() {
            files::create_private_dir(dir)
                .map_err(|e| self.io_error("create the cache directory", e))?;
        }
        let lock =
            files::lock_beside(&self.path).map_err(|e| self.io_error("lock the cache file", e))?;
        let orphans = files::remove_orphan_temps(&self.path, &lock)
            + files::remove_orphan_temps(&self.journal, &lock);
        if orphans > 0 {
            log::warn!(
                "cacheman: removed {orphans} temporary file(s) left by an interrupted save of cache `{}` in {}",
                self.cache,
                self.path.parent().unwrap_or(&self.path).display()
            );
        }
        self.settle_next_journal(&lock)?;
        Ok(lock)
    }

    fn io_error(&self, action: &'static str, source: io::Error) -> Error {
        Error::Io {
            cache: self.cache.clone(),
            action,
            path: self.path.clone(),
            source,
        }
    }

    fn codec_error(&self, action: &'static str, message: String) -> Error {
        Error::Codec {
            cache: self.cache.clone(),
            action,
            codec: self.identity.codec.name(),
            message,
        }
    }

    fn check_identity(&self, header: &Header) -> Result<(), Rejection> {
        let ours = &self.identity;
        if header.codec != ours.codec.id() {
            return Err(Rejection::Incompatible(format!(
                "another codec (id {}, this cache uses {})",
                header.codec,
                ours.codec.name()
            )));
        }
        if header.type_fingerprint != ours.type_fingerprint {
            return Err(Rejection::Incompatible(
                "other key or value types (the type fingerprint differs)".into(),
            ));
        }
        if header.fn_fingerprint != ours.fn_fingerprint {
            return Err(Rejection::Incompatible(
                "another version of the cached function (the function fingerprint differs)".into(),
            ));
        }
        Ok(())
    }

    fn reject(&self, rejection: Rejection) -> Error {
        match rejection {
            Rejection::Corrupt(reason) => Error::Corrupt {
                cache: self.cache.clone(),
                path: self.path.clone(),
                reason,
            },
            Rejection::Incompatible(reason) => Error::Incompatible {
                cache: self.cache.clone(),
                path: self.path.clone(),
                reason,
            },
        }
    }
}

impl<K, V> FileStore<K, V>
where
    K: std::hash::Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn remember(&self, seen: Seen) {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = seen;
    }

    fn seen(&self) -> Seen {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The whole file and its stamp, read through one handle so the two agree.
    fn read_file(&self) -> Result<Option<(Vec<u8>, FileStamp)>, Error> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(self.io_error("open the cache file", err)),
        };
        let read = (|| {
            let meta = file.metadata()?;
            // Reserve no more than the file's real size, and at most 1 GiB up front.
            let mut bytes = Vec::with_capacity(meta.len().min(1 << 30) as usize);
            file.read_to_end(&mut bytes)?;
            Ok((bytes, FileStamp::of(&meta)))
        })();
        read.map(Some)
            .map_err(|e| self.io_error("read the cache file", e))
    }

    /// Checks and decodes a whole file.
    pub(super) fn decode(&self, bytes: &[u8]) -> Result<Loaded<K, V>, Error> {
        self.decode_snapshot(bytes).map(|(loaded, _)| loaded)
    }

    /// Checks and decodes a whole snapshot; with its journal generation.
    fn decode_snapshot(&self, bytes: &[u8]) -> Result<(Loaded<K, V>, u64), Error> {
        let (header, payload) = self.check_snapshot(bytes)?;
        let rows = self.decode_rows(&header, payload, |_| false)?;
        let loaded = Loaded {
            rows,
            epoch: header.epoch,
        };
        Ok((loaded, header.generation))
    }

    /// Checks a whole snapshot's header, identity and row count; returns the header and the
    /// payload, to decode with [`FileStore::decode_rows`].
    pub(super) fn check_snapshot<'a>(&self, bytes: &'a [u8]) -> Result<(Header, &'a [u8]), Error> {
        let (header, payload) = Header::decode(bytes).map_err(|r| self.reject(r))?;
        if header.entries == 0 && payload.is_empty() {
            // An invalidation marker, whoever wrote it: empty, whatever the types.
            return Ok((header, payload));
        }
        self.check_identity(&header).map_err(|r| self.reject(r))?;
        // Every row takes at least one byte in every codec (only one key can encode to nothing),
        // so a larger count is a lie, refused before any decoding.
        if header.entries > payload.len() as u64 {
            return Err(self.reject(Rejection::Corrupt(format!(
                "header counts {} entries but the payload holds only {} bytes",
                header.entries,
                payload.len()
            ))));
        }
        Ok((header, payload))
    }

    /// The rows of a checked snapshot's payload, less those `superseded` says a journal
    /// replaces (asked once per row, in order; read and dropped at once, postcard rows of
    /// version 2 and later; other payloads are decoded whole and filtered after).
    pub(super) fn decode_rows(
        &self,
        header: &Header,
        payload: &[u8],
        superseded: impl Fn(&K) -> bool,
    ) -> Result<Vec<(K, V, RowMeta)>, Error> {
        if header.entries == 0 && payload.is_empty() {
            return Ok(Vec::new());
        }
        let codec = self.identity.codec;
        let stamped = self.identity.stamped;
        let decoded: Result<Vec<(K, V, RowMeta)>, String> = match codec {
            Codec::Postcard if header.version >= 2 => codec::decode_postcard_rows_except(
                payload,
                header.entries,
                self.layout_of(header),
                superseded,
            ),
            Codec::Postcard => {
                // Version 1 started the rows with their count.
                codec::decode_postcard_rows(payload, None, self.layout_of(header))
                    .map(|rows| retained(rows, superseded))
            }
            _ if stamped => codec.decode::<(K, V, u64)>(payload).map(|rows| {
                let rows = rows
                    .into_iter()
                    .map(|(k, v, stamp)| (k, v, RowMeta::stamped(stamp)));
                retained(rows.collect(), superseded)
            }),
            _ => codec.decode::<(K, V)>(payload).map(|pairs| {
                let rows = pairs.into_iter().map(|(k, v)| (k, v, RowMeta::default()));
                retained(rows.collect(), superseded)
            }),
        };
        let rows = decoded.map_err(|message| self.undecodable(message))?;
        // Version 2 and later count the rows in the header, and the decoder reads exactly as
        // many; version 1's sequence and JSON and CSV documents carry their own count.
        let read = rows.len() as u64;
        if read != header.entries && !(codec == Codec::Postcard && header.version >= 2) {
            return Err(self.reject(Rejection::Corrupt(format!(
                "header counts {} entries but the payload holds {read}",
                header.entries,
            ))));
        }
        Ok(rows)
    }

    /// A checked snapshot's payload that does not decode: `message` says why.
    pub(super) fn undecodable(&self, message: String) -> Error {
        // The checksum matched, so the file is whole: what it holds is not this build's key
        // and value types (a changed struct keeps its name, and so its fingerprint).
        self.reject(Rejection::Incompatible(format!(
            "key or value types of another serialized layout ({} could not decode it: \
             {message}); if a stored type changed, change the cache's fn_fingerprint \
             (`version` in #[cached]) too",
            self.identity.codec.name()
        )))
    }

    /// How the postcard rows of a snapshot with `header` are laid out.
    pub(super) fn layout_of(&self, header: &Header) -> codec::Layout {
        codec::Layout {
            stamped: self.identity.stamped,
            sized: header.version >= 4,
            counted: header.counted,
        }
    }

    /// Room for as much as the file held last time, and a little more for growth: a large
    /// payload then grows without copying itself over and over.
    fn expected_len(&self) -> usize {
        let expected = self.seen().snapshot.map_or(0, |stamp| stamp.len() as usize);
        expected.saturating_add(expected / 8).min(1 << 30)
    }

    /// A postcard encoder writing into a new temporary file; `lock` is the save lock when the
    /// encoder is to hold it (the caller holds it otherwise).
    fn stream(&self, lock: Option<files::SaveLock>) -> Result<StreamEncoder<K, V>, Error> {
        let temp = files::TempFile::beside(&self.path)
            .map_err(|e| self.io_error("create a temporary file beside the cache file", e))?;
        Ok(StreamEncoder::new(
            &self.cache,
            &self.path,
            self.identity.layout(),
            temp,
            lock,
            self.fault.clone(),
        ))
    }

    /// Our own snapshot as rows, for a merge.
    fn decoded(&self, rows: Rows<K, V>) -> Result<Vec<(K, V, RowMeta)>, Error> {
        match rows {
            Rows::Decoded(rows) => Ok(rows),
            Rows::Encoded(mut streamed) => {
                let payload = streamed
                    .read_payload()
                    .map_err(|e| self.io_error("read back the cache file being written", e))?;
                let layout = self.identity.layout();
                codec::decode_postcard_rows(&payload, Some(streamed.rows), layout)
                    .map_err(|message| self.codec_error("decode", message))
            }
        }
    }

    /// The header of a snapshot of this store's identity.
    fn header(&self, epoch: u64, generation: u64, entries: u64, payload: (u64, u32)) -> Header {
        Header {
            version: format::FORMAT_VERSION,
            codec: self.identity.codec.id(),
            type_fingerprint: self.identity.type_fingerprint,
            fn_fingerprint: self.identity.fn_fingerprint,
            epoch,
            entries,
            payload_len: payload.0,
            payload_crc: payload.1,
            generation,
            // Only postcard rows carry counts (`Identity::with_counts`).
            counted: self.identity.counted,
        }
    }

    /// Writes `rows` (encoding them, unless they came streamed) and puts the file in place;
    /// the caller holds the save lock.
    fn write(&self, rows: Rows<K, V>, epoch: u64, generation: u64) -> Result<(), Error> {
        let codec = self.identity.codec;
        let header = |entries, payload_len, payload_crc| {
            self.header(epoch, generation, entries, (payload_len, payload_crc))
        };
        let written = match rows {
            Rows::Decoded(rows) if codec == Codec::Postcard => {
                let mut stream = self.stream(None)?;
                for (key, value, stamp) in &rows {
                    stream.put(key, value, *stamp)?;
                    stream.unlocked()?;
                }
                return self.write(Rows::Encoded(stream.finish_streamed()?), epoch, generation);
            }
            Rows::Encoded(streamed) => {
                let header = header(streamed.rows, streamed.payload_len, streamed.payload_crc);
                streamed.commit(&header.encode(), &self.path, self.fault.as_deref())
            }
            Rows::Decoded(rows) => {
                let payload = if self.identity.stamped {
                    let rows: Vec<(&K, &V, u64)> =
                        rows.iter().map(|(k, v, m)| (k, v, m.stamp_ms)).collect();
                    codec.encode(&rows, self.expected_len())
                } else {
                    let pairs: Vec<(&K, &V)> = rows.iter().map(|(k, v, _)| (k, v)).collect();
                    codec.encode(&pairs, self.expected_len())
                }
                .map_err(|message| self.codec_error("encode", message))?;
                let header = header(
                    rows.len() as u64,
                    payload.len() as u64,
                    crc32fast::hash(&payload),
                );
                files::atomic_write(
                    &self.path,
                    &[&header.encode(), &payload],
                    self.fault.as_deref(),
                )
            }
        };
        written.map_err(|e| self.io_error("write the cache file", e))?;
        // The snapshot holds every frame of the old journal now: a journal that survives
        // this removal (a crash) is of an older generation, and ignored.
        if let Err(err) = journal::remove(&self.journal) {
            log::warn!(
                "cacheman: could not remove the old journal of cache `{}` at {} ({err}); it is \
                 ignored, and replaced by the next save",
                self.cache,
                self.journal.display()
            );
        }
        // Under the lock nobody else can have replaced it since our rename.
        self.remember(Seen {
            snapshot: fs::metadata(&self.path).ok().map(|m| FileStamp::of(&m)),
            generation,
            epoch,
            offset: journal::HEADER_LEN,
            journal_len: 0,
        });
        Ok(())
    }
}

impl<K, V> Store<K, V> for FileStore<K, V>
where
    K: std::hash::Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn fingerprint(&self, value: &V) -> Option<u64> {
        codec::postcard_fingerprint(value)
    }

    fn save(&self, outgoing: Outgoing<K, V>) -> Result<Merged<K, V>, Error> {
        let Outgoing {
            mut rows,
            epoch,
            journal,
        } = outgoing;
        // A streamed snapshot took the lock before it started.
        let held = match &mut rows {
            Rows::Encoded(streamed) => streamed.take_lock(),
            Rows::Decoded(_) => None,
        };
        let _lock = match held {
            Some(lock) => lock,
            None => self.lock()?,
        };
        let (disk, generation) = self.saved_elsewhere();
        let (rows, epoch, merged) = match (journal, disk) {
            (Some(journal), Some(disk)) => {
                let ours = self.decoded(rows)?;
                let (rows, epoch, merged) =
                    merge::merge(ours, epoch, journal, disk.rows, disk.epoch);
                (Rows::Decoded(rows), epoch, merged)
            }
            _ => (rows, epoch, Merged::Written),
        };
        self.write(rows, epoch, self.next_generation(generation))?;
        Ok(merged)
    }

    fn takes_changes(&self) -> bool {
        // JSON and CSV files stay whole documents, readable by other tools.
        self.identity.codec == Codec::Postcard
    }

    fn append(&self, changes: Changes<K, V>) -> Result<Option<Merged<K, V>>, Error> {
        if !self.takes_changes() {
            return Ok(None);
        }
        let _lock = self.lock()?;
        self.append_locked(changes)
    }

    fn compaction_due(&self) -> bool {
        let seen = self.seen();
        let snapshot = seen.snapshot.map_or(0, |s| s.len());
        seen.journal_len > snapshot.max(self.compact_from)
    }

    fn compaction_overdue(&self) -> bool {
        let seen = self.seen();
        let snapshot = seen.snapshot.map_or(0, |s| s.len());
        seen.journal_len > snapshot.max(self.compact_from).saturating_mul(2)
    }

    fn begin_compaction(&self, epoch: u64) -> Result<Option<Begun<K, V>>, Error> {
        self.begin_compacting(epoch)
    }

    fn saved_rows(
        &self,
        compacting: &Compacting,
        keys: Vec<K>,
        written: &mut Rows<K, V>,
    ) -> Result<Option<Changes<K, V>>, Error> {
        self.stored_rows_of(compacting, keys, written)
    }

    fn finish_compaction(
        &self,
        compacting: Compacting,
        rows: Rows<K, V>,
        saved: Changes<K, V>,
    ) -> Result<Option<Merged<K, V>>, Error> {
        self.finish_compacting(compacting, rows, saved)
    }

    fn encoder(&self) -> Result<Option<Box<dyn Encoder<K, V>>>, Error> {
        if self.identity.codec != Codec::Postcard {
            return Ok(None);
        }
        // Held from before the snapshot to the rename: the temporary file must outlive other
        // processes' clean-up of orphans, which they do under this lock.
        let lock = self.lock()?;
        Ok(Some(Box::new(self.stream(Some(lock))?)))
    }

    fn load(&self) -> Result<Option<Loaded<K, V>>, Error> {
        // Opening is when orphans of a crashed save are cleaned, so they never accumulate;
        // the lock also keeps the snapshot and its journal in step while both are read.
        let _lock = match self.path.parent().is_some_and(Path::is_dir) {
            true => Some(self.lock()?),
            false => None,
        };
        let Some(disk) = self.read_disk()? else {
            self.remember(Seen::default());
            return Ok(None);
        };
        self.remember(disk.seen);
        Ok(Some(Loaded {
            rows: disk.rows,
            epoch: disk.epoch,
        }))
    }

    fn invalidate(&self, epoch: u64) -> Result<(), Error> {
        // An empty file at the new epoch, not a deletion: other processes that still hold the
        // old contents see the epoch at their next save or load and drop them.
        self.save(Outgoing {
            rows: Rows::Decoded(Vec::new()),
            epoch,
            journal: None,
        })
        .map(drop)
    }

    fn delete(&self) -> Result<(), Error> {
        let _lock = self.lock()?;
        // The journal first: a crash in between leaves the snapshot alone, never a journal
        // that a later snapshot of the same generation would take as its own.
        journal::remove(&self.journal)
            .map_err(|e| self.journal_io_error("remove the journal", e))?;
        files::remove_file_durably(&self.path)
            .map_err(|e| self.io_error("remove the cache file", e))?;
        self.remember(Seen::default());
        Ok(())
    }
}

mod compaction;
pub(super) mod join;
mod journaled;
mod replay;
#[cfg(test)]
mod tests;
