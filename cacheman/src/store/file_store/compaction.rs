//! The file store's compaction that blocks no save: three phases, of which only the first and
//! the last hold `<name>.lock` (and only for a moment), so that saves of this process and
//! appends of others go on while the new snapshot is written (docs/ARCHITECTURE.md, "The
//! journal").
//!
//! 1. [`FileStore::begin_compacting`]: under the lock, read what others appended since our
//!    last sync (as an append with no changes does) and note the journal's generation `g` and
//!    where its frames end, `E`.
//! 2. Without the lock, the cache copies its entries into a temporary snapshot (locked by
//!    its writer, so other processes' clean-up leaves it alone), and asks
//!    [`FileStore::stored_rows_of`] what the files held at `E` for the keys whose copied rows
//!    may be unsaved.
//! 3. [`FileStore::finish_compacting`]: under the lock again, read what others appended since,
//!    write the new journal (generation `g + 1`: those stored rows, then every frame appended
//!    after `E`, carried byte for byte) to `<name>.journal.next`, rename the snapshot into
//!    place, then the journal.
//!
//! A crash before the snapshot's rename leaves the old pair and perhaps a `.journal.next` of
//! a generation the snapshot does not have: removed. A crash between the renames leaves a
//! `.journal.next` of the snapshot's generation: it is that snapshot's journal, and the next
//! to take the lock renames it ([`FileStore::settle_next_journal`]).

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::FileStore;
use crate::Error;
use crate::shards::RowMeta;
use crate::store::files::{self, Step};
use crate::store::format::{self, Header};
use crate::store::journal::{self, JournalHeader};
use crate::store::merge::{FileStamp, Merged};
use crate::store::{Begun, Changes, Codec, Compacting, Encoder, Rows, codec};

impl<K, V> FileStore<K, V>
where
    K: std::hash::Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The first phase (see the module's documentation).
    pub(super) fn begin_compacting(&self, epoch: u64) -> Result<Option<Begun<K, V>>, Error> {
        if self.identity.codec != Codec::Postcard {
            return Ok(None);
        }
        let _lock = self.lock()?;
        let nothing = Changes {
            rows: Vec::new(),
            removed: Vec::new(),
            epoch,
        };
        let Some(merged) = self.append_locked(nothing)? else {
            // The files call for a whole snapshot: the next save writes one.
            return Ok(None);
        };
        let seen = self.seen();
        // Only a journal of this build's layout that continues the snapshot is compacted
        // apart; the others make saves write whole snapshots.
        let continued = journal::header_at(&self.journal).is_some_and(|h| {
            h == JournalHeader::of(&self.identity, seen.generation)
                && seen.offset > journal::HEADER_LEN
        });
        let compaction = match (seen.snapshot, continued) {
            (Some(stamp), true) => {
                let compacting = Compacting {
                    stamp,
                    generation: seen.generation,
                    epoch: seen.epoch,
                    offset: seen.offset,
                };
                let encoder: Box<dyn Encoder<K, V>> = Box::new(self.stream(None)?);
                Some((compacting, encoder))
            }
            _ => None,
        };
        Ok(Some(Begun { merged, compaction }))
    }

    /// What the snapshot and the journal up to the first phase's end held for `keys`: rows,
    /// and the keys they did not hold as removed. Read without the lock: a snapshot is never
    /// rewritten in place, and frames before the end the first phase saw are never cut.
    pub(super) fn stored_rows_of(
        &self,
        compacting: &Compacting,
        keys: Vec<K>,
        written: &mut Rows<K, V>,
    ) -> Result<Option<Changes<K, V>>, Error> {
        let mut changes = Changes {
            rows: Vec::new(),
            removed: Vec::new(),
            epoch: compacting.epoch,
        };
        if keys.is_empty() {
            return Ok(Some(changes));
        }
        let wanted: HashSet<K> = keys.into_iter().collect();
        // The journal first: if the snapshot read after it is still the one the compaction
        // started from, so was the journal (a compaction replaces the snapshot first).
        let read = journal::read(&self.journal, journal::HEADER_LEN)
            .map_err(|e| self.journal_io_error("read the journal", e))?;
        let Some(read) = read else {
            return Ok(None);
        };
        let Some((bytes, stamp)) = self.read_file()? else {
            return Ok(None);
        };
        let continued = read
            .header
            .as_ref()
            .is_ok_and(|h| h.generation == compacting.generation);
        let frames_len = (compacting.offset - journal::HEADER_LEN) as usize;
        let frames = read.frames_from(journal::HEADER_LEN);
        if stamp != compacting.stamp || !continued || frames.len() < frames_len {
            return Ok(None);
        }
        let (header, payload) = self.check_snapshot(&bytes)?;
        let mut stored: HashMap<K, Option<(V, RowMeta)>> = self
            .decode_rows(&header, payload, |key| !wanted.contains(key))?
            .into_iter()
            .map(|(key, value, meta)| (key, Some((value, meta))))
            .collect();
        drop(bytes);
        let layout =
            JournalHeader::of(&self.identity, compacting.generation).layout(self.identity.stamped);
        let scan =
            journal::scan(&frames[..frames_len]).map_err(|reason| self.journal_corrupt(reason))?;
        for (at, body) in scan.bodies.iter().enumerate() {
            let frame = journal::decode_body::<K, V>(body, layout).map_err(|message| {
                self.journal_corrupt(format!(
                    "frame {at} checks out but does not decode: {message}"
                ))
            })?;
            for (key, value, meta) in frame.rows {
                if wanted.contains(&key) {
                    stored.insert(key, Some((value, meta)));
                }
            }
            for key in frame.removed {
                if wanted.contains(&key) {
                    stored.insert(key, None);
                }
            }
        }
        let mut absent = HashSet::new();
        for key in wanted {
            match stored.remove(&key).flatten() {
                Some((value, meta)) => changes.rows.push((key, value, meta)),
                None => {
                    absent.insert(key);
                }
            }
        }
        // A key the files lack needs a removal only if the new snapshot has it: keys that
        // came and went since the last save (often most of them) do not.
        if !absent.is_empty() {
            changes.removed = self.held_by(written, absent)?;
        }
        Ok(Some(changes))
    }

    /// Those of `keys` that the snapshot `written` holds (read back: only their values are
    /// decoded).
    fn held_by(&self, written: &mut Rows<K, V>, keys: HashSet<K>) -> Result<Vec<K>, Error> {
        let rows = match written {
            Rows::Decoded(rows) => {
                return Ok(rows
                    .iter()
                    .filter(|(key, _, _)| keys.contains(key))
                    .map(|(key, _, _)| key.clone())
                    .collect());
            }
            Rows::Encoded(streamed) => {
                let payload = streamed
                    .read_payload()
                    .map_err(|e| self.io_error("read back the cache file being written", e))?;
                codec::decode_postcard_rows_except::<K, V>(
                    &payload,
                    streamed.rows,
                    self.identity.layout(),
                    |key| !keys.contains(key),
                )
                .map_err(|message| self.codec_error("decode", message))?
            }
        };
        Ok(rows.into_iter().map(|(key, _, _)| key).collect())
    }

    /// The last phase (see the module's documentation).
    pub(super) fn finish_compacting(
        &self,
        compacting: Compacting,
        rows: Rows<K, V>,
        saved: Changes<K, V>,
    ) -> Result<Option<Merged<K, V>>, Error> {
        let Rows::Encoded(streamed) = rows else {
            return Ok(None);
        };
        let _lock = self.lock()?;
        let current = fs::metadata(&self.path).ok().map(|m| FileStamp::of(&m));
        if current.as_ref() != Some(&compacting.stamp) {
            // Another process compacted or invalidated meanwhile; dropping the stream
            // removes the temporary file.
            log::debug!(
                "cacheman: a compaction of cache `{}` found its snapshot replaced meanwhile; \
                 dropped",
                self.cache
            );
            return Ok(None);
        }
        let nothing = Changes {
            rows: Vec::new(),
            removed: Vec::new(),
            epoch: compacting.epoch,
        };
        let Some(merged) = self.append_locked(nothing)? else {
            return Ok(None);
        };
        let seen = self.seen();
        let read = journal::read(&self.journal, compacting.offset)
            .map_err(|e| self.journal_io_error("read the journal", e))?;
        let carried = read.as_ref().and_then(|read| {
            let header = read.header.as_ref().ok()?;
            let len = seen.offset.checked_sub(compacting.offset)? as usize;
            let usable = header.generation == compacting.generation
                && seen.generation == compacting.generation
                && read.from == compacting.offset;
            usable.then(|| read.bytes.get(..len)).flatten()
        });
        let Some(carried) = carried else {
            return Ok(Some(merged));
        };
        let generation = compacting.generation + 1;
        let mut next = JournalHeader::of(&self.identity, generation).encode();
        if !saved.rows.is_empty() || !saved.removed.is_empty() {
            let layout = self.identity.layout();
            next.extend(journal::encode_frame(
                &self.cache,
                layout,
                &saved.rows,
                &saved.removed,
            )?);
        }
        next.extend_from_slice(carried);
        drop(read);
        // Without frames to carry the new snapshot needs no journal, as after a whole save.
        let framed = next.len() as u64 > journal::HEADER_LEN;
        if framed {
            self.write_next_journal(&next)
                .map_err(|e| self.next_journal_error("write the compaction's new journal", e))?;
        }
        let header: Header = self.header(
            compacting.epoch,
            generation,
            streamed.rows,
            (streamed.payload_len, streamed.payload_crc),
        );
        if let Err(err) = streamed.commit(&header.encode(), &self.path, self.fault.as_deref()) {
            // Ours, of a generation no snapshot has (unless the rename happened and only the
            // directory's fsync failed: then it is the snapshot's journal, renamed below or
            // by the next lock).
            if format_generation(&self.path) != Some(generation) {
                let _ = fs::remove_file(&self.next_journal);
            }
            return Err(self.io_error("write the cache file", err));
        }
        let new_len = match framed {
            true => {
                self.rename_next_journal().map_err(|e| {
                    self.next_journal_error("put the compaction's new journal in place", e)
                })?;
                next.len() as u64
            }
            false => {
                // One that survives this removal (a crash) is of an older generation: ignored.
                if let Err(err) = journal::remove(&self.journal) {
                    log::warn!(
                        "cacheman: could not remove the old journal of cache `{}` at {} \
                         ({err}); it is ignored, and replaced by the next save",
                        self.cache,
                        self.journal.display()
                    );
                }
                0
            }
        };
        self.remember(super::Seen {
            snapshot: fs::metadata(&self.path).ok().map(|m| FileStamp::of(&m)),
            generation,
            epoch: compacting.epoch,
            offset: new_len.max(journal::HEADER_LEN),
            journal_len: new_len,
        });
        Ok(Some(merged))
    }
}

impl<K, V> FileStore<K, V> {
    fn next_journal_error(&self, action: &'static str, source: io::Error) -> Error {
        Error::Io {
            cache: self.cache.clone(),
            action,
            path: self.next_journal.clone(),
            source,
        }
    }

    /// Writes `bytes` to `<name>.journal.next`, replacing any, and syncs them.
    fn write_next_journal(&self, bytes: &[u8]) -> io::Result<()> {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&self.next_journal)?;
        files::check(self.fault.as_deref(), Step::Write(0))?;
        file.write_all(bytes)?;
        files::check(self.fault.as_deref(), Step::SyncFile(&file))?;
        file.sync_all()
    }

    /// Renames `<name>.journal.next` over the journal and syncs the directory.
    fn rename_next_journal(&self) -> io::Result<()> {
        let fault = self.fault.as_deref();
        files::check(
            fault,
            Step::Rename {
                from: &self.next_journal,
                to: &self.journal,
            },
        )?;
        fs::rename(&self.next_journal, &self.journal)?;
        let dir = self.journal.parent().unwrap_or(&self.journal);
        files::check(fault, Step::SyncDir(dir))?;
        files::sync_dir(dir)
    }

    /// The load rule for `<name>.journal.next` (see the module's documentation), under the
    /// lock: renamed over the journal when its generation is the snapshot's, else removed.
    pub(super) fn settle_next_journal(&self, _held: &files::SaveLock) -> Result<(), Error> {
        if fs::symlink_metadata(&self.next_journal).is_err() {
            return Ok(());
        }
        let next = journal::generation_at(&self.next_journal);
        if next.is_some() && next == format_generation(&self.path) {
            log::info!(
                "cacheman: finishing a compaction of cache `{}` cut off between its renames: \
                 {} becomes its journal",
                self.cache,
                self.next_journal.display()
            );
            return self.rename_next_journal().map_err(|e| {
                self.next_journal_error("put an interrupted compaction's journal in place", e)
            });
        }
        log::warn!(
            "cacheman: removing {}, left by a compaction of cache `{}` cut off before its \
             snapshot was in place",
            self.next_journal.display(),
            self.cache
        );
        files::remove_file_durably(&self.next_journal)
            .map_err(|e| self.next_journal_error("remove an interrupted compaction's journal", e))
    }
}

/// The journal generation in the header of the snapshot at `path`, if it has a readable one
/// (format version 3 on; older ones have none that a journal continues).
fn format_generation(path: &std::path::Path) -> Option<u64> {
    use std::io::Read;
    let mut head = Vec::with_capacity(format::HEADER_LEN);
    fs::File::open(path)
        .ok()?
        .take(format::HEADER_LEN as u64)
        .read_to_end(&mut head)
        .ok()?;
    let (header, _) = Header::decode_head(&head).ok()?;
    (header.version >= 3).then_some(header.generation)
}

#[cfg(test)]
mod tests;
