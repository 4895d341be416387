//! The journal beside a snapshot (`<name>.journal`): each save of a cache whose store takes
//! changes appends one checked frame of the rows it changed and the keys it removed; loading
//! replays the frames after the snapshot; a compaction writes a new snapshot and starts over.
//!
//! ```text
//! header: magic "CMJOURNL" | version u16 | codec u8 | flags u8 | type fingerprint u64
//!         | fn fingerprint u64 | generation u64 | header crc32 u32              (40 bytes)
//! frame:  body length u32 | body crc32 u32 | body
//! body:   kind u8 (1: changes) | rows u64 | removed keys u64 | rows' length u64
//!         | rows (postcard, as a snapshot's payload) | removed keys (postcard, back to back)
//! ```
//! Version 2 lays rows out as snapshot format version 4 does (each value's length before
//! it, and a use count at the end when the flags byte says so, as the snapshot's does);
//! version 1, as versions 2 and 3 do. Both are read; frames are appended only to a
//! journal of the version this build writes (a save finding one of version 1 compacts).
//! Little-endian. A journal continues the snapshot whose header carries its generation; one
//! of another generation is what a crash left between a compaction's rename and its removal
//! of the old journal, whose frames that snapshot already holds, and is ignored.
//!
//! A frame that does not check out (short, a checksum that fails, a length of zero) is a torn
//! append when nothing valid can follow it: it is the last frame, or only zeros follow (a
//! file extended before its blocks were written). Anything else is damage before the last
//! frame, and the journal is refused.

use crate::shards::RowMeta;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{self, Layout, PostcardRows};
use super::files::{self, Fault, Step};
use super::format::{self, u32_at, u64_at};
use super::{Codec, Identity};

/// First bytes of every journal.
const MAGIC: [u8; 8] = *b"CMJOURNL";
/// The journal layout this build writes.
pub(crate) const VERSION: u16 = 2;
/// The oldest journal layout this build reads.
const OLDEST_READ: u16 = 1;
/// Size of the journal's header in bytes.
pub(crate) const HEADER_LEN: u64 = 8 + 2 + 1 + 1 + 8 * 3 + 4;
/// Length and checksum in front of each frame's body.
pub(crate) const FRAME_HEAD: usize = 8;
/// The one kind of frame so far: the changes of one save.
const KIND_CHANGES: u8 = 1;

/// The journal beside the snapshot at `path`.
pub(crate) fn path_beside(path: &Path) -> PathBuf {
    path.with_extension("journal")
}

/// A journal's header: whose frames follow, and which snapshot they continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JournalHeader {
    /// [`VERSION`] when writing; what the file says when read.
    pub version: u16,
    pub codec: u8,
    pub type_fingerprint: u64,
    pub fn_fingerprint: u64,
    pub generation: u64,
    /// Whether rows end with a use count (version 2 on; the snapshot header's flag).
    pub counted: bool,
}

impl JournalHeader {
    pub(crate) fn of(identity: &Identity, generation: u64) -> Self {
        JournalHeader {
            version: VERSION,
            codec: identity.codec.id(),
            type_fingerprint: identity.type_fingerprint,
            fn_fingerprint: identity.fn_fingerprint,
            generation,
            counted: identity.counted,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN as usize);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&[self.codec, format::flags_of(self.counted)]);
        out.extend_from_slice(&self.type_fingerprint.to_le_bytes());
        out.extend_from_slice(&self.fn_fingerprint.to_le_bytes());
        out.extend_from_slice(&self.generation.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads and checks the header at the start of `bytes`.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let len = HEADER_LEN as usize;
        if bytes.len() < len {
            return Err(format!(
                "{} bytes is shorter than the {len}-byte journal header",
                bytes.len()
            ));
        }
        if bytes[..8] != MAGIC {
            return Err("it does not start with the cacheman journal's magic bytes".into());
        }
        if crc32fast::hash(&bytes[..len - 4]) != u32_at(bytes, len - 4) {
            return Err("journal header checksum mismatch".into());
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if !(OLDEST_READ..=VERSION).contains(&version) {
            return Err(format!(
                "journal version {version} (this build reads versions {OLDEST_READ} to {VERSION})"
            ));
        }
        let counted = format::counted_by(bytes[11], version >= 2, "journal header")?;
        Ok(JournalHeader {
            version,
            counted,
            codec: bytes[10],
            type_fingerprint: u64_at(bytes, 12),
            fn_fingerprint: u64_at(bytes, 20),
            generation: u64_at(bytes, 28),
        })
    }

    /// Whether frames under this header are of `identity`'s rows (in either layout).
    pub(crate) fn matches(&self, identity: &Identity) -> bool {
        let ours = JournalHeader::of(identity, self.generation);
        (self.codec, self.type_fingerprint, self.fn_fingerprint)
            == (ours.codec, ours.type_fingerprint, ours.fn_fingerprint)
    }

    /// How the rows of this journal's frames are laid out, for a cache whose rows are
    /// `stamped` or not.
    pub(crate) fn layout(&self, stamped: bool) -> Layout {
        Layout {
            stamped,
            sized: self.version >= 2,
            counted: self.counted,
        }
    }
}

/// The valid frames found after some offset, and where they end.
#[derive(Debug)]
pub(crate) struct Scan<'a> {
    /// The frames' bodies, in order.
    pub bodies: Vec<&'a [u8]>,
    /// Bytes from the start of the scanned slice to the end of the last valid frame: where
    /// the next frame is appended.
    pub end: usize,
    /// What was wrong with a torn last frame, which is dropped.
    pub torn: Option<String>,
}

/// Splits `bytes` (frames back to back) into frames. `Err`: damage before the last frame,
/// described with its offset relative to `bytes`.
pub(crate) fn scan(bytes: &[u8]) -> Result<Scan<'_>, String> {
    let mut bodies = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let problem = if rest.len() < FRAME_HEAD {
            Some(format!(
                "{} bytes of a frame's {FRAME_HEAD}-byte head",
                rest.len()
            ))
        } else {
            let len = u32_at(rest, 0) as usize;
            let crc = u32_at(rest, 4);
            match rest.get(FRAME_HEAD..FRAME_HEAD.saturating_add(len)) {
                None => Some(format!(
                    "a frame claims {len} bytes but {} follow",
                    rest.len() - FRAME_HEAD
                )),
                Some([]) => Some("a frame of length zero".to_owned()),
                Some(body) if crc32fast::hash(body) != crc => {
                    if FRAME_HEAD + len == rest.len() {
                        Some("the last frame's checksum does not match".to_owned())
                    } else {
                        return Err(damage(at, "a frame's checksum does not match", bytes));
                    }
                }
                Some(body) => {
                    bodies.push(body);
                    at += FRAME_HEAD + len;
                    None
                }
            }
        };
        if let Some(problem) = problem {
            // Torn only if nothing valid can come after it.
            let len_or_end = |r: &[u8]| {
                (r.len() >= FRAME_HEAD).then(|| FRAME_HEAD.saturating_add(u32_at(r, 0) as usize))
            };
            let is_last = len_or_end(rest).is_none_or(|n| n >= rest.len());
            if is_last || rest.iter().all(|&b| b == 0) {
                return Ok(Scan {
                    bodies,
                    end: at,
                    torn: Some(format!("{problem} ({} bytes dropped)", rest.len())),
                });
            }
            return Err(damage(at, &problem, bytes));
        }
    }
    Ok(Scan {
        bodies,
        end: at,
        torn: None,
    })
}

fn damage(at: usize, problem: &str, bytes: &[u8]) -> String {
    format!(
        "{problem} at byte {at} of the frames, and {} bytes follow it: damage before the last \
         frame (not a torn append)",
        bytes.len() - at
    )
}

/// One frame: rows inserted or replaced, keys removed.
pub(crate) struct Frame<K, V> {
    pub rows: Vec<(K, V, RowMeta)>,
    pub removed: Vec<K>,
}

/// A whole frame (head and body) of `rows`, laid out as `layout` says, and `removed` keys.
pub(crate) fn encode_frame<K, V>(
    cache: &str,
    layout: Layout,
    rows: &[(K, V, RowMeta)],
    removed: &[K],
) -> Result<Vec<u8>, crate::Error>
where
    K: Serialize + 'static,
    V: Serialize + 'static,
{
    let mut encoded = PostcardRows::<K, V>::new(cache, layout, 0);
    for (key, value, stamp) in rows {
        encoded.put(key, value, *stamp)?;
    }
    let mut body = Vec::with_capacity(FRAME_HEAD + 25 + encoded.bytes().len());
    body.extend_from_slice(&[0; FRAME_HEAD]);
    body.push(KIND_CHANGES);
    body.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    body.extend_from_slice(&(removed.len() as u64).to_le_bytes());
    body.extend_from_slice(&(encoded.bytes().len() as u64).to_le_bytes());
    body.extend_from_slice(encoded.bytes());
    for key in removed {
        codec::postcard_append(key, &mut body).map_err(|message| crate::Error::Codec {
            cache: cache.to_owned(),
            action: "encode",
            codec: Codec::Postcard.name(),
            message,
        })?;
    }
    seal_frame(&mut body).map_err(|len| crate::Error::Codec {
        cache: cache.to_owned(),
        action: "encode",
        codec: Codec::Postcard.name(),
        message: format!(
            "one save's changes take {len} bytes, more than a journal frame holds (4 GiB); \
             call compact() to write them as a whole snapshot"
        ),
    })?;
    Ok(body)
}

/// Writes the head of `frame` (its body's length and CRC-32) into its first [`FRAME_HEAD`]
/// bytes, which the body follows. `Err(bytes)`: the body is longer than a frame holds (4 GiB).
pub(crate) fn seal_frame(frame: &mut [u8]) -> Result<(), usize> {
    let len = u32::try_from(frame.len() - FRAME_HEAD).map_err(|_| frame.len())?;
    let crc = crc32fast::hash(&frame[FRAME_HEAD..]);
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// One frame's body, split: its rows (laid out as a snapshot's payload) and its removed keys
/// (back to back), with their counts.
pub(crate) struct BodyParts<'a> {
    pub rows: u64,
    pub rows_bytes: &'a [u8],
    pub removed: u64,
    pub keys_bytes: &'a [u8],
}

/// Splits one frame's body. Every count is checked against the bytes left, so that no more
/// is reserved for them than the bytes could hold.
pub(crate) fn body_parts(body: &[u8]) -> Result<BodyParts<'_>, String> {
    if body.len() < 25 {
        return Err(format!(
            "a {}-byte frame is shorter than its 25-byte head",
            body.len()
        ));
    }
    if body[0] != KIND_CHANGES {
        return Err(format!("unknown frame kind {}", body[0]));
    }
    let (rows, removed, rows_len) = (u64_at(body, 1), u64_at(body, 9), u64_at(body, 17));
    let rest = &body[25..];
    let Some(rows_bytes) = usize::try_from(rows_len).ok().and_then(|n| rest.get(..n)) else {
        return Err(format!(
            "the frame claims {rows_len} bytes of rows but holds {}",
            rest.len()
        ));
    };
    let keys_bytes = &rest[rows_bytes.len()..];
    // Every row takes a byte at least (only one key encodes to nothing), and so does every
    // removed key but one.
    if rows > rows_bytes.len() as u64 + 1 || removed > keys_bytes.len() as u64 + 1 {
        return Err(format!(
            "the frame counts {rows} rows and {removed} removed keys in {} bytes",
            rest.len()
        ));
    }
    Ok(BodyParts {
        rows,
        rows_bytes,
        removed,
        keys_bytes,
    })
}

/// Decodes one frame's body, whose rows are laid out as `layout` says.
pub(crate) fn decode_body<K, V>(body: &[u8], layout: Layout) -> Result<Frame<K, V>, String>
where
    K: DeserializeOwned + 'static,
    V: DeserializeOwned + 'static,
{
    let parts = body_parts(body)?;
    let rows = codec::decode_postcard_rows(parts.rows_bytes, Some(parts.rows), layout)?;
    let (removed, mut keys) = (parts.removed, parts.keys_bytes);
    let mut gone = Vec::with_capacity(removed as usize);
    for at in 0..removed {
        let (key, after) = postcard::take_from_bytes::<K>(keys)
            .map_err(|e| format!("removed key {at} of {removed}: {e}"))?;
        gone.push(key);
        keys = after;
    }
    if !keys.is_empty() {
        return Err(format!("{} bytes after the frame's last key", keys.len()));
    }
    Ok(Frame {
        rows,
        removed: gone,
    })
}

/// A journal file read from some offset on: its header, and the bytes from that offset.
pub(crate) struct JournalRead {
    pub header: Result<JournalHeader, String>,
    /// The file's bytes from `from` on.
    pub bytes: Vec<u8>,
    pub from: u64,
}

impl JournalRead {
    /// The frames from `offset` (counted from the file's start, at or after what was read)
    /// on.
    pub(crate) fn frames_from(&self, offset: u64) -> &[u8] {
        let from = offset.max(HEADER_LEN).saturating_sub(self.from);
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        self.bytes.get(from..).unwrap_or(&[])
    }
}

/// Reads the journal at `path`, its header and what follows `from` (bytes before it are not
/// read: an append reads only the frames other processes added since its own); `None` when
/// there is none. A `from` past the file's end reads from the header's end.
pub(crate) fn read(path: &Path, from: u64) -> io::Result<Option<JournalRead>> {
    Ok(
        read_after(path, HEADER_LEN, from)?.map(|(head, bytes, from)| JournalRead {
            header: JournalHeader::decode(&head),
            bytes,
            from,
        }),
    )
}

/// A file's first bytes, its bytes from some offset on, and that offset.
pub(crate) type HeadAndRest = (Vec<u8>, Vec<u8>, u64);

/// Reads the file at `path`: its first `header_len` bytes (fewer if it is shorter), and its
/// bytes from `from` on (from `header_len` if `from` is before it or past the file's end),
/// with where they start. `None` when there is no file.
pub(crate) fn read_after(
    path: &Path,
    header_len: u64,
    from: u64,
) -> io::Result<Option<HeadAndRest>> {
    use std::io::{Seek, SeekFrom};
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let len = file.metadata()?.len();
    let mut head = vec![0u8; header_len.min(len) as usize];
    file.read_exact(&mut head)?;
    let from = match from.max(header_len) {
        from if from <= len => from,
        _ => header_len,
    };
    file.seek(SeekFrom::Start(from.min(len)))?;
    let mut bytes = Vec::with_capacity((len - from.min(len)).min(1 << 30) as usize);
    file.read_to_end(&mut bytes)?;
    Ok(Some((head, bytes, from)))
}

/// What a check of a journal without its key and value types found (for tools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    /// Whole frames.
    pub frames: usize,
    /// The generation in its header: it continues the snapshot of the same generation.
    pub generation: u64,
    /// A torn last frame (dropped at the next load), described.
    pub torn: Option<String>,
}

/// Checks the journal at `path` without decoding rows: its header and every frame's length
/// and checksum. `Ok(None)`: there is none; `Ok(Some(Err(reason)))`: it would be refused.
pub(crate) fn check(path: &Path) -> io::Result<Option<Result<Checked, String>>> {
    let Some(read) = read(path, HEADER_LEN)? else {
        return Ok(None);
    };
    let header = match read.header {
        Ok(header) => header,
        Err(reason) => return Ok(Some(Err(reason))),
    };
    Ok(Some(scan(read.frames_from(HEADER_LEN)).map(|scan| {
        Checked {
            frames: scan.bodies.len(),
            generation: header.generation,
            torn: scan.torn,
        }
    })))
}

/// The generation in the header of the journal at `path`, if it has a readable one.
pub(crate) fn generation_at(path: &Path) -> Option<u64> {
    header_at(path).map(|h| h.generation)
}

/// The header of the journal at `path`, if it has a readable one.
pub(crate) fn header_at(path: &Path) -> Option<JournalHeader> {
    let mut head = [0u8; HEADER_LEN as usize];
    File::open(path).ok()?.read_exact(&mut head).ok()?;
    JournalHeader::decode(&head).ok()
}

/// Where a compaction writes the journal of its new snapshot before it renames it over the
/// journal beside the snapshot at `path` (`<name>.journal.next`). One whose generation is the
/// snapshot's is that snapshot's journal (a crash fell between the compaction's two renames);
/// any other is what a crash before the snapshot's rename left.
pub(crate) fn next_path_beside(path: &Path) -> PathBuf {
    path.with_extension("journal.next")
}

/// Starts an empty journal at `path` (replacing any other): written beside and renamed, with
/// the directory synced, since the name is new.
pub(crate) fn create(path: &Path, header: &JournalHeader, fault: Option<&Fault>) -> io::Result<()> {
    files::atomic_write(path, &[&header.encode()], fault)
}

/// Appends `frame` at `at` (cutting whatever follows it first: a torn frame) and syncs the
/// file's data. Returns the journal's new length. On an error the file is cut back to `at`
/// if it can be, so that a half-written frame does not sit before the next one.
pub(crate) fn append(path: &Path, at: u64, frame: &[u8], fault: Option<&Fault>) -> io::Result<u64> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let written = (|| {
        if file.metadata()?.len() != at {
            file.set_len(at)?;
        }
        files::check(fault, Step::Write(at))?;
        write_all_at(&file, frame, at)?;
        files::check(fault, Step::SyncFile(&file))?;
        // The file's size changes with the data: fdatasync covers it.
        file.sync_data()
    })();
    if let Err(err) = written {
        let _ = file.set_len(at);
        return Err(err);
    }
    Ok(at + frame.len() as u64)
}

#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, at)
}

#[cfg(not(unix))]
fn write_all_at(mut file: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    file.seek(SeekFrom::Start(at))?;
    file.write_all(bytes)
}

/// Removes the journal at `path`, if any. Not synced: a journal that comes back after a crash
/// is of an older generation than the snapshot and ignored.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
