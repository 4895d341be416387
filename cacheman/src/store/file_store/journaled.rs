//! The file store's journal side: reading a snapshot with its journal replayed, and appending
//! a save's changes after the frames other processes appended (see `journal.rs` for the
//! format, docs/ARCHITECTURE.md "The journal" for the design).

use crate::shards::RowMeta;
use std::collections::HashSet;
use std::fs;
use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::join::{self, Damage, SizedRows};
use super::replay::Replayed;
use super::{Codec, FileStore};
use crate::Error;
use crate::shards::Hasher;
use crate::store::Changes;
use crate::store::codec::Layout;
use crate::store::journal::{self, JournalHeader};
use crate::store::merge::{FileStamp, Merged};

/// What this process last read or wrote of the snapshot and its journal: another snapshot
/// stamp means another process compacted (or invalidated) since, and frames past `offset` are
/// other processes' saves.
#[derive(Debug, Clone, Default)]
pub(super) struct Seen {
    pub(super) snapshot: Option<FileStamp>,
    /// The snapshot's journal generation.
    pub(super) generation: u64,
    /// The snapshot's invalidation epoch.
    pub(super) epoch: u64,
    /// Where the frames read or written end in the journal of `generation`.
    pub(super) offset: u64,
    /// The journal's length after the last append, for the compaction rule.
    pub(super) journal_len: u64,
}

/// A journal read whole (`None`: there is none).
type JournalBytes = io::Result<Option<journal::JournalRead>>;

/// A snapshot read whole, with its stamp (`None`: there is none).
type SnapshotBytes = Result<Option<(Vec<u8>, FileStamp)>, Error>;

/// The journal size from which a load reads it on a second thread, beside the snapshot: below
/// it, the read is shorter than starting a thread.
pub(super) const READ_APART_FROM: u64 = 1 << 20;

/// Decoded frames, and where the last one ends in the journal.
pub(super) struct Frames<K, V> {
    pub(super) changes: Vec<journal::Frame<K, V>>,
    pub(super) end: u64,
}

/// The snapshot and its journal as they are on disk, replayed.
pub(super) struct Disk<K, V> {
    pub(super) rows: Vec<(K, V, RowMeta)>,
    pub(super) epoch: u64,
    pub(super) seen: Seen,
}

impl<K, V> FileStore<K, V>
where
    K: std::hash::Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    pub(super) fn journal_io_error(&self, action: &'static str, source: io::Error) -> Error {
        Error::Io {
            cache: self.cache.clone(),
            action,
            path: self.journal.clone(),
            source,
        }
    }

    pub(super) fn journal_corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            cache: self.cache.clone(),
            path: self.journal.clone(),
            reason: format!(
                "journal: {reason}; the snapshot beside it lacks the journal's changes, so \
                 neither was loaded (the next save writes a new snapshot and journal)"
            ),
        }
    }

    /// The snapshot and its journal's frames, replayed; `None` without a snapshot. A torn
    /// last frame is dropped with a warning; damage before it, or a journal of other rows, is
    /// an error (the files are left as they are). A journal of another generation is what a
    /// crashed compaction left, all of it in the snapshot already: ignored.
    ///
    /// The journal is read first; the snapshot's rows it replaces are then left out, their
    /// values stepped over unread. A large journal of sized rows (snapshot format version 4,
    /// journal version 2; `join::index_pays`) is replayed through an index of its keys
    /// (`join.rs`: one pass over each file, lookups in batches); a smaller one, or older
    /// files, through one table of the journal's last states (`replay.rs`), each snapshot
    /// key looked up in it as it is decoded. A large journal is read on a second thread
    /// while the snapshot is read ([`Self::read_files`]); decoding stays on this one
    /// (decoding on two threads was no faster on two cores under load, and values freed
    /// across threads' allocator arenas made the next load slower).
    pub(super) fn read_disk(&self) -> Result<Option<Disk<K, V>>, Error> {
        let (snapshot, journal) = self.read_files();
        let Some((bytes, stamp)) = snapshot? else {
            return Ok(None);
        };
        let (header, payload) = self.check_snapshot(&bytes)?;
        let mut seen = Seen {
            snapshot: Some(stamp),
            generation: header.generation,
            epoch: header.epoch,
            offset: journal::HEADER_LEN,
            journal_len: 0,
        };
        let Some(read) = self.continuing_journal(journal, header.generation)? else {
            let rows = self.decode_rows(&header, payload, |_| false)?;
            return Ok(Some(Disk {
                rows,
                epoch: header.epoch,
                seen,
            }));
        };
        let (scan, layout) = self.scanned(&read, journal::HEADER_LEN)?;
        seen.offset = journal::HEADER_LEN + scan.end as u64;
        seen.journal_len = seen.offset;
        let ours = self.layout_of(&header);
        let sized = self.identity.codec == Codec::Postcard && ours.sized && layout.sized;
        let rows = if sized && join::index_pays::<K>(join::entries_of(&scan.bodies)) {
            let snapshot = SizedRows {
                bytes: payload,
                count: header.entries,
                layout: ours,
            };
            let damaged = |damage| match damage {
                Damage::Journal { frame, message } => {
                    self.undecodable_frame(frame, journal::HEADER_LEN, message)
                }
                Damage::Snapshot(message) => self.undecodable(message),
            };
            let hasher = Hasher::default();
            join::replay_over(snapshot, &scan.bodies, layout, &hasher).map_err(damaged)?
        } else {
            let frames = self.decoded_frames(&scan, layout, journal::HEADER_LEN)?;
            drop(read);
            let named = frames.iter().map(|f| f.rows.len() + f.removed.len()).sum();
            let mut state = Replayed::with_capacity(named);
            for frame in frames {
                state.fold(frame);
            }
            let mut rows = self.decode_rows(&header, payload, |k| state.contains(k))?;
            rows.reserve(state.len());
            rows.extend(state.into_rows());
            rows
        };
        Ok(Some(Disk {
            rows,
            epoch: header.epoch,
            seen,
        }))
    }

    /// The snapshot's bytes and stamp, and the journal read whole. A journal of
    /// [`READ_APART_FROM`] bytes or more is read on a second thread while this one reads the
    /// snapshot: the two reads (mostly the kernel's copying into pages new to the process)
    /// overlap on two cores, and cost what they did on one.
    fn read_files(&self) -> (SnapshotBytes, JournalBytes) {
        let read_journal = || journal::read(&self.journal, journal::HEADER_LEN);
        let large = fs::metadata(&self.journal).is_ok_and(|m| m.len() >= READ_APART_FROM);
        if large {
            let apart = std::thread::scope(|scope| {
                let thread = std::thread::Builder::new().name("cacheman-load".into());
                let journal = thread.spawn_scoped(scope, read_journal).ok()?;
                let snapshot = self.read_file();
                let journal = journal
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("its reading thread panicked")));
                Some((snapshot, journal))
            });
            if let Some(read) = apart {
                return read;
            }
            log::debug!(
                "cacheman: no thread to read the journal of cache `{}` beside its snapshot",
                self.cache
            );
        }
        let snapshot = self.read_file();
        // Without a snapshot the journal is not read: there is nothing to replay it over.
        let journal = match &snapshot {
            Ok(Some(_)) => read_journal(),
            _ => Ok(None),
        };
        (snapshot, journal)
    }

    /// The journal continuing snapshot `generation`, from `read` (the journal read whole);
    /// `None` without one (none, or one a crashed compaction left: of another generation,
    /// all of it in the snapshot already).
    fn continuing_journal(
        &self,
        read: JournalBytes,
        generation: u64,
    ) -> Result<Option<journal::JournalRead>, Error> {
        let read = read.map_err(|e| self.journal_io_error("read the journal", e))?;
        let Some(read) = read else {
            return Ok(None);
        };
        let header = read.header.clone().map_err(|r| self.journal_corrupt(r))?;
        if header.generation != generation {
            log::debug!(
                "cacheman: ignoring the journal of cache `{}` at {}: generation {}, the \
                 snapshot's is {generation}",
                self.cache,
                self.journal.display(),
                header.generation
            );
            return Ok(None);
        }
        if !header.matches(&self.identity) {
            return Err(self.journal_corrupt(
                "its header names other key or value types, codec or function fingerprint \
                 than its snapshot"
                    .into(),
            ));
        }
        Ok(Some(read))
    }

    /// The frames of `read` from `offset` on, decoded.
    pub(super) fn frames(
        &self,
        read: &journal::JournalRead,
        offset: u64,
    ) -> Result<Frames<K, V>, Error> {
        let (scan, layout) = self.scanned(read, offset)?;
        Ok(Frames {
            changes: self.decoded_frames(&scan, layout, offset)?,
            end: offset.max(journal::HEADER_LEN) + scan.end as u64,
        })
    }

    /// The whole frames of `read` from `offset` on, and how their rows are laid out. A torn
    /// last frame is left out with a warning; damage before it is an error.
    fn scanned<'a>(
        &self,
        read: &'a journal::JournalRead,
        offset: u64,
    ) -> Result<(journal::Scan<'a>, Layout), Error> {
        let bytes = read.frames_from(offset);
        let stamped = self.identity.stamped;
        let layout = match &read.header {
            Ok(header) => header.layout(stamped),
            Err(_) => self.identity.layout(),
        };
        let scan = journal::scan(bytes).map_err(|r| {
            self.journal_corrupt(format!("{r} (the frames start at byte {offset})"))
        })?;
        if let Some(torn) = &scan.torn {
            log::warn!(
                "cacheman: dropped the torn last frame of the journal of cache `{}` at {} \
                 (a save interrupted while it appended): {torn}",
                self.cache,
                self.journal.display()
            );
        }
        Ok((scan, layout))
    }

    /// The frames `scan` found after `offset`, decoded.
    fn decoded_frames(
        &self,
        scan: &journal::Scan<'_>,
        layout: Layout,
        offset: u64,
    ) -> Result<Vec<journal::Frame<K, V>>, Error> {
        scan.bodies
            .iter()
            .enumerate()
            .map(|(at, body)| {
                journal::decode_body(body, layout)
                    .map_err(|message| self.undecodable_frame(at, offset, message))
            })
            .collect()
    }

    fn undecodable_frame(&self, at: usize, offset: u64, message: String) -> Error {
        self.journal_corrupt(format!(
            "frame {at} after byte {offset} checks out but does not decode: {message}"
        ))
    }

    /// The generation of the next snapshot: above the one on disk and any journal beside it.
    pub(super) fn next_generation(&self, on_disk: u64) -> u64 {
        on_disk.max(journal::generation_at(&self.journal).unwrap_or(0)) + 1
    }

    /// What another process saved since our last sync (a snapshot, or frames appended to the
    /// journal), if anything, with the snapshot's generation. Files we cannot use are logged
    /// and treated as absent: our save replaces them (and reports its own error if the write
    /// fails too).
    pub(super) fn saved_elsewhere(&self) -> (Option<Disk<K, V>>, u64) {
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
    pub(super) fn append_locked(
        &self,
        changes: Changes<K, V>,
    ) -> Result<Option<Merged<K, V>>, Error> {
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
                        theirs.fold(frame);
                    }
                    let (mut rows, mut gone) = (Vec::new(), Vec::new());
                    for (key, row) in theirs.into_states() {
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
        if changes.rows.is_empty() && changes.removed.is_empty() {
            // Nothing of ours to write: only what others saved was to be read.
            self.remember(now_seen);
            return Ok(Some(merged));
        }
        // Frames of another layout (an older build's, or a cache's with or without a
        // capacity) before ours would not read back as one journal: a whole snapshot instead.
        let other_layout = read.as_ref().is_some_and(|read| {
            read.header.as_ref().is_ok_and(|h| {
                h.generation == now_seen.generation
                    && h.matches(&self.identity)
                    && (h.version != journal::VERSION || h.counted != self.identity.counted)
            })
        });
        if other_layout {
            return Ok(None);
        }
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
            self.identity.layout(),
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
