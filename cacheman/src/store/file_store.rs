//! The default store: one file per cache, in cacheman's format (the snapshot), and with the
//! postcard codec a journal beside it that saves append their changes to (`journal.rs`);
//! whole snapshots (compactions) are merged with what other processes saved.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::hash::Hash;
use std::io::{self, Read};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::format::{self, Header, Rejection};
use super::journal::{self, JournalHeader};
use super::merge::{self, FileStamp, Merged};
use super::stream::StreamEncoder;
use super::{Changes, Codec, Encoder, Identity, Loaded, Outgoing, Rows, Store, codec, files};
use crate::Error;
use crate::shards::Sink;

/// A journal is compacted once it is larger than its snapshot and at least this large: a
/// compaction rewrites the snapshot, so it then costs at most about twice what the appends
/// since the last one wrote.
pub(crate) const COMPACT_FROM: u64 = 1 << 20;

/// The default storage: one file per cache, in cacheman's format.
pub(crate) struct FileStore<K, V> {
    cache: String,
    path: PathBuf,
    journal: PathBuf,
    identity: Identity,
    fault: Option<Arc<files::Fault>>,
    /// The files as this process last read or wrote them.
    seen: Mutex<Seen>,
    /// Smallest journal that is compacted ([`COMPACT_FROM`]; tests lower it).
    compact_from: u64,
    _rows: PhantomData<fn() -> (K, V)>,
}

/// What this process last read or wrote of the snapshot and its journal: another snapshot
/// stamp means another process compacted (or invalidated) since, and frames past `offset` are
/// other processes' saves.
#[derive(Debug, Clone, Default)]
struct Seen {
    snapshot: Option<FileStamp>,
    /// The snapshot's journal generation.
    generation: u64,
    /// The snapshot's invalidation epoch.
    epoch: u64,
    /// Where the frames read or written end in the journal of `generation`.
    offset: u64,
    /// The journal's length after the last append, for the compaction rule.
    journal_len: u64,
}

/// Decoded frames, and where the last one ends in the journal.
struct Frames<K, V> {
    changes: Vec<journal::Frame<K, V>>,
    end: u64,
}

/// The final state of the keys frames name (`None`: removed).
type Replayed<K, V> = HashMap<K, Option<(V, u64)>, crate::shards::Hasher>;

/// Folds `frame` into the final state of the keys it names.
fn fold<K: Hash + Eq, V>(state: &mut Replayed<K, V>, frame: journal::Frame<K, V>) {
    for key in frame.removed {
        state.insert(key, None);
    }
    for (key, value, stamp) in frame.rows {
        state.insert(key, Some((value, stamp)));
    }
}

/// Applies `frames`, in order, to a snapshot's `rows`. Only the keys the frames name are
/// hashed, and rows stay where they are: a changed row takes its new value in place.
fn replay<K: Hash + Eq, V>(rows: &mut Vec<(K, V, u64)>, frames: Vec<journal::Frame<K, V>>) {
    if frames.is_empty() {
        return;
    }
    let named = frames.iter().map(|f| f.rows.len() + f.removed.len()).sum();
    let mut state = Replayed::with_capacity_and_hasher(named, Default::default());
    for frame in frames {
        fold(&mut state, frame);
    }
    let mut removed = false;
    for row in rows.iter_mut() {
        match state.get_mut(&row.0) {
            None => {}
            Some(slot @ Some(_)) => {
                if let Some((value, stamp)) = slot.take() {
                    row.1 = value;
                    row.2 = stamp;
                }
                // Taken: marks the key as seen, so it is not added again below.
                *slot = None;
                state.remove(&row.0);
            }
            Some(None) => removed = true,
        }
    }
    if removed {
        // Keys still named are removed ones (the rows that took values left the map).
        rows.retain(|(key, _, _)| !state.contains_key(key));
    }
    rows.extend(
        state
            .into_iter()
            .filter_map(|(key, row)| row.map(|(value, stamp)| (key, value, stamp))),
    );
}

/// The snapshot and its journal as they are on disk, replayed.
struct Disk<K, V> {
    rows: Vec<(K, V, u64)>,
    epoch: u64,
    seen: Seen,
}

impl<K, V> FileStore<K, V> {
    pub(crate) fn new(cache: &str, path: PathBuf, identity: Identity) -> Self {
        FileStore {
            cache: cache.to_owned(),
            journal: journal::path_beside(&path),
            path,
            identity,
            fault: None,
            seen: Mutex::new(Seen::default()),
            compact_from: COMPACT_FROM,
            _rows: PhantomData,
        }
    }

    /// Compacts journals from `bytes` on instead of [`COMPACT_FROM`] (tests only).
    #[cfg(test)]
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

    /// Takes the save lock, creating the directory if needed, and removes what crashed saves
    /// left behind.
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

    fn journal_io_error(&self, action: &'static str, source: io::Error) -> Error {
        Error::Io {
            cache: self.cache.clone(),
            action,
            path: self.journal.clone(),
            source,
        }
    }

    fn journal_corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            cache: self.cache.clone(),
            path: self.journal.clone(),
            reason: format!(
                "journal: {reason}; the snapshot beside it lacks the journal's changes, so                  neither was loaded (the next save writes a new snapshot and journal)"
            ),
        }
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
        let (header, payload) = Header::decode(bytes).map_err(|r| self.reject(r))?;
        let loaded = |rows| Loaded {
            rows,
            epoch: header.epoch,
        };
        if header.entries == 0 && payload.is_empty() {
            // An invalidation marker, whoever wrote it: empty, whatever the types.
            return Ok((loaded(Vec::new()), header.generation));
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
        let codec = self.identity.codec;
        let rows: Vec<(K, V, u64)> = if codec == Codec::Postcard {
            // Version 1 started the rows with their count; version 2 leaves it to the header.
            let count = (header.version >= 2).then_some(header.entries);
            codec::decode_postcard_rows(payload, count, self.identity.stamped)
        } else if self.identity.stamped {
            codec.decode(payload)
        } else {
            codec
                .decode::<(K, V)>(payload)
                .map(|pairs| pairs.into_iter().map(|(k, v)| (k, v, 0)).collect())
        }
        .map_err(|message| {
            // The checksum matched, so the file is whole: what it holds is not this build's
            // key and value types (a changed struct keeps its name, and so its fingerprint).
            self.reject(Rejection::Incompatible(format!(
                "key or value types of another serialized layout ({} could not decode it: \
                 {message}); if a stored type changed, change the cache's fn_fingerprint \
                 (`version` in #[cached]) too",
                codec.name()
            )))
        })?;
        if rows.len() as u64 != header.entries {
            return Err(self.reject(Rejection::Corrupt(format!(
                "header counts {} entries but the payload holds {}",
                header.entries,
                rows.len()
            ))));
        }
        Ok((loaded(rows), header.generation))
    }

    /// The snapshot and its journal's frames, replayed; `None` without a snapshot. A torn
    /// last frame is dropped with a warning; damage before it, or a journal of other rows, is
    /// an error (the files are left as they are). A journal of another generation is what a
    /// crashed compaction left, all of it in the snapshot already: ignored.
    fn read_disk(&self) -> Result<Option<Disk<K, V>>, Error> {
        let Some((bytes, stamp)) = self.read_file()? else {
            return Ok(None);
        };
        let (loaded, generation) = self.decode_snapshot(&bytes)?;
        drop(bytes);
        let mut disk = Disk {
            rows: loaded.rows,
            epoch: loaded.epoch,
            seen: Seen {
                snapshot: Some(stamp),
                generation,
                epoch: loaded.epoch,
                offset: journal::HEADER_LEN,
                journal_len: 0,
            },
        };
        let read = journal::read(&self.journal, journal::HEADER_LEN)
            .map_err(|e| self.journal_io_error("read the journal", e))?;
        let Some(read) = read else {
            return Ok(Some(disk));
        };
        let header = read.header.clone().map_err(|r| self.journal_corrupt(r))?;
        if header.generation != generation {
            log::debug!(
                "cacheman: ignoring the journal of cache `{}` at {}: generation {}, the snapshot's is {generation}",
                self.cache,
                self.journal.display(),
                header.generation
            );
            return Ok(Some(disk));
        }
        if !header.matches(&self.identity) {
            return Err(self.journal_corrupt(
                "its header names other key or value types, codec or function fingerprint                  than its snapshot"
                    .into(),
            ));
        }
        let frames = self.frames(&read, journal::HEADER_LEN)?;
        replay(&mut disk.rows, frames.changes);
        disk.seen.offset = frames.end;
        disk.seen.journal_len = frames.end;
        Ok(Some(disk))
    }

    /// The frames of `read` from `offset` on, decoded.
    fn frames(&self, read: &journal::JournalRead, offset: u64) -> Result<Frames<K, V>, Error> {
        let bytes = read.frames_from(offset);
        let scan = journal::scan(bytes).map_err(|r| {
            self.journal_corrupt(format!("{r} (the frames start at byte {offset})"))
        })?;
        if let Some(torn) = &scan.torn {
            log::warn!(
                "cacheman: dropped the torn last frame of the journal of cache `{}` at {}                  (a save interrupted while it appended): {torn}",
                self.cache,
                self.journal.display()
            );
        }
        let changes = scan
            .bodies
            .iter()
            .enumerate()
            .map(|(at, body)| {
                journal::decode_body(body, self.identity.stamped).map_err(|message| {
                    self.journal_corrupt(format!(
                        "frame {at} after byte {offset} checks out but does not decode: {message}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Frames {
            changes,
            end: offset.max(journal::HEADER_LEN) + scan.end as u64,
        })
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
            self.identity.stamped,
            temp,
            lock,
            self.fault.clone(),
        ))
    }

    /// Our own snapshot as rows, for a merge.
    fn decoded(&self, rows: Rows<K, V>) -> Result<Vec<(K, V, u64)>, Error> {
        match rows {
            Rows::Decoded(rows) => Ok(rows),
            Rows::Encoded(mut streamed) => {
                let payload = streamed
                    .read_payload()
                    .map_err(|e| self.io_error("read back the cache file being written", e))?;
                codec::decode_postcard_rows(&payload, Some(streamed.rows), self.identity.stamped)
                    .map_err(|message| self.codec_error("decode", message))
            }
        }
    }

    /// Writes `rows` (encoding them, unless they came streamed) and puts the file in place;
    /// the caller holds the save lock.
    fn write(&self, rows: Rows<K, V>, epoch: u64, generation: u64) -> Result<(), Error> {
        let codec = self.identity.codec;
        let header = |entries, payload_len, payload_crc| Header {
            version: format::FORMAT_VERSION,
            codec: codec.id(),
            type_fingerprint: self.identity.type_fingerprint,
            fn_fingerprint: self.identity.fn_fingerprint,
            epoch,
            entries,
            payload_len,
            payload_crc,
            generation,
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
                "cacheman: could not remove the old journal of cache `{}` at {} ({err}); it is                  ignored, and replaced by the next save",
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

    /// The generation of the next snapshot: above the one on disk and any journal beside it.
    fn next_generation(&self, on_disk: u64) -> u64 {
        on_disk.max(journal::generation_at(&self.journal).unwrap_or(0)) + 1
    }

    /// What another process saved since our last sync (a snapshot, or frames appended to the
    /// journal), if anything, with the snapshot's generation. Files we cannot use are logged
    /// and treated as absent: our save replaces them (and reports its own error if the write
    /// fails too).
    fn saved_elsewhere(&self) -> (Option<Disk<K, V>>, u64) {
        let seen = self.seen();
        let current = fs::metadata(&self.path).ok().map(|m| FileStamp::of(&m));
        let journal_len = fs::metadata(&self.journal).map_or(0, |m| m.len());
        let appended = journal_len > seen.offset
            && journal::generation_at(&self.journal) == Some(seen.generation);
        if current.is_none() || (current == seen.snapshot && !appended) {
            return (None, seen.generation);
        }
        match self.read_disk() {
            Ok(Some(disk)) => {
                let generation = disk.seen.generation;
                (Some(disk), generation)
            }
            Ok(None) => (None, seen.generation),
            Err(err) => {
                log::warn!("cacheman: {err}; replacing it");
                (None, seen.generation)
            }
        }
    }

    /// Appends `changes` under the save lock (see [`Store::append`]).
    fn append_locked(&self, changes: Changes<K, V>) -> Result<Option<Merged<K, V>>, Error> {
        let seen = self.seen();
        let current = fs::metadata(&self.path).ok().map(|m| FileStamp::of(&m));
        if current.is_none() {
            return Ok(None);
        }
        let touched: HashSet<&K> = changes
            .rows
            .iter()
            .map(|(k, _, _)| k)
            .chain(&changes.removed)
            .collect();
        let read = journal::read(&self.journal, seen.offset)
            .map_err(|e| self.journal_io_error("read the journal", e))?;
        let (merged, mut now_seen) = if current == seen.snapshot {
            if changes.epoch != seen.epoch {
                // Invalidated here since the snapshot was written: the file must say so.
                return Ok(None);
            }
            // The snapshot we know: other processes' saves since are frames past our offset.
            let usable = read.as_ref().and_then(|read| {
                let header = read.header.as_ref().ok()?;
                (header.generation == seen.generation && header.matches(&self.identity))
                    .then_some(read)
            });
            match usable {
                Some(read) => {
                    // From the header's end when the journal is shorter than our offset (it
                    // was replaced by one of the same generation).
                    let frames = match self.frames(read, read.from) {
                        Ok(frames) => frames,
                        Err(err) => {
                            log::warn!("cacheman: {err}; writing a whole snapshot instead");
                            return Ok(None);
                        }
                    };
                    let mut theirs = Replayed::default();
                    for frame in frames.changes {
                        fold(&mut theirs, frame);
                    }
                    let (mut rows, mut gone) = (Vec::new(), Vec::new());
                    for (key, row) in theirs {
                        match (touched.contains(&key), row) {
                            (true, _) => {}
                            (false, Some((value, stamp))) => rows.push((key, value, stamp)),
                            (false, None) => gone.push(key),
                        }
                    }
                    let seen = Seen {
                        offset: frames.end,
                        ..seen
                    };
                    (Merged::Adopt { rows, gone }, seen)
                }
                // No journal continues this snapshot yet (or one a crash left): a new one.
                None => (
                    Merged::Written,
                    Seen {
                        offset: journal::HEADER_LEN,
                        journal_len: 0,
                        ..seen
                    },
                ),
            }
        } else {
            // Another process compacted or invalidated since: read it all.
            let disk = match self.read_disk() {
                Ok(Some(disk)) => disk,
                Ok(None) => return Ok(None),
                Err(err) => {
                    log::warn!("cacheman: {err}; writing a whole snapshot instead");
                    return Ok(None);
                }
            };
            if disk.epoch > changes.epoch {
                // Invalidated elsewhere: our changes may derive from what it dropped.
                self.remember(disk.seen);
                return Ok(Some(Merged::Invalidated {
                    epoch: disk.epoch,
                    rows: disk.rows,
                }));
            }
            if disk.epoch < changes.epoch {
                return Ok(None);
            }
            let rows = disk
                .rows
                .into_iter()
                .filter(|(k, _, _)| !touched.contains(k))
                .collect();
            (Merged::Resync { rows }, disk.seen)
        };
        drop(touched);
        if now_seen.offset <= journal::HEADER_LEN && now_seen.journal_len == 0 {
            let exists = read.as_ref().is_some_and(|read| {
                read.header
                    .as_ref()
                    .is_ok_and(|h| h.generation == now_seen.generation && h.matches(&self.identity))
            });
            if !exists {
                let header = JournalHeader::of(&self.identity, now_seen.generation);
                journal::create(&self.journal, &header, self.fault.as_deref())
                    .map_err(|e| self.journal_io_error("create the journal", e))?;
            }
        }
        drop(read);
        let frame = journal::encode_frame(
            &self.cache,
            self.identity.stamped,
            &changes.rows,
            &changes.removed,
        )?;
        let end = journal::append(
            &self.journal,
            now_seen.offset,
            &frame,
            self.fault.as_deref(),
        )
        .map_err(|e| self.journal_io_error("append to the journal", e))?;
        now_seen.offset = end;
        now_seen.journal_len = end;
        self.remember(now_seen);
        Ok(Some(merged))
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

#[cfg(test)]
mod tests;
