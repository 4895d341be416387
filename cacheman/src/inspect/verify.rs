//! Checking a whole cache file without its types: header, length, payload checksum, counts.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::store::format::{HEADER_LEN, Header, Rejection};
use crate::store::journal;

/// What [`verify`] found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// Every check passed: the file is whole and would be loaded by a program of its types.
    Intact {
        /// Entries the snapshot's header counts.
        entries: u64,
        /// Bytes read (snapshot and journal).
        bytes: u64,
        /// Saves appended to the journal since the snapshot (their frames; 0 without one).
        journal_frames: usize,
        /// What a load will pass over, if anything: a torn last frame of the journal (a save
        /// cut off half-way, dropped at the next load), or a journal of an older snapshot (a
        /// compaction cut off half-way, ignored and replaced).
        note: Option<String>,
    },
    /// There is no file.
    Missing,
    /// The file is damaged or not a cache file (the reason). A program would not load it and
    /// its next save replaces it.
    Damaged(String),
    /// The file could not be read (the error): permissions, I/O.
    Unreadable(String),
}

impl Verification {
    /// Whether the file is fine (intact, or absent).
    ///
    /// ```
    /// assert!(cacheman::inspect::Verification::Missing.is_ok());
    /// ```
    pub fn is_ok(&self) -> bool {
        matches!(self, Verification::Intact { .. } | Verification::Missing)
    }
}

/// Reads the cache file at `path` whole and checks it: the magic, the header's checksum and
/// format version, that the payload is as long as the header says, its CRC-32, and that the
/// header does not count more entries than the payload has bytes; then its journal, if it has
/// one: the journal's header and every frame's length and CRC-32, as a load would. `progress` is told the bytes
/// read so far and the file's size as it goes (for a progress bar). The rows themselves are
/// not decoded: that needs the key and value types (postcard is not self-describing), which
/// only the program has.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let manager = cacheman::CacheManager::new("app", dir.path());
/// let cache = manager.register_cache::<u32, u32>("c").unwrap();
/// cache.insert(1, 1);
/// cache.save().unwrap();
/// let path = manager.cache_file_path("c").unwrap();
/// let found = cacheman::inspect::verify(&path, &mut |_, _| {});
/// let cacheman::inspect::Verification::Intact { entries, journal_frames, .. } = found else {
///     panic!("{found:?}");
/// };
/// assert_eq!((entries, journal_frames), (1, 0));
/// ```
pub fn verify(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Verification {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Verification::Missing,
        Err(err) => return Verification::Unreadable(err.to_string()),
    };
    let (entries, bytes, generation) = match check(&mut file, progress) {
        Ok(Ok(found)) => found,
        Ok(Err(reason)) => return Verification::Damaged(reason),
        Err(err) => return Verification::Unreadable(err.to_string()),
    };
    // A compaction cut off between its two renames left the snapshot's journal under its
    // temporary name; the next open renames it (and removes one of another generation).
    let next = journal::next_path_beside(path);
    let renamed_at_open = journal::generation_at(&next) == Some(generation);
    let journal_path = match renamed_at_open {
        true => next,
        false => journal::path_beside(path),
    };
    let checked = match journal::check(&journal_path) {
        Ok(checked) => checked,
        Err(err) => {
            return Verification::Unreadable(format!("{}: {err}", journal_path.display()));
        }
    };
    let journal_bytes = std::fs::metadata(&journal_path).map_or(0, |m| m.len());
    match checked {
        None => Verification::Intact {
            entries,
            bytes,
            journal_frames: 0,
            note: None,
        },
        Some(Err(reason)) => {
            Verification::Damaged(format!("its journal {}: {reason}", journal_path.display()))
        }
        Some(Ok(found)) if found.generation != generation => Verification::Intact {
            entries,
            bytes: bytes + journal_bytes,
            journal_frames: 0,
            note: Some(format!(
                "a journal of an older snapshot (generation {} of {generation}), left by a \
                 compaction cut off: ignored, and replaced by the next save",
                found.generation
            )),
        },
        Some(Ok(found)) => Verification::Intact {
            entries,
            bytes: bytes + journal_bytes,
            journal_frames: found.frames,
            note: match (found.torn, renamed_at_open) {
                (Some(torn), _) => Some(format!(
                    "a torn last frame, dropped at the next load: {torn}"
                )),
                (None, true) => Some(format!(
                    "its journal is still {} (a compaction was cut off between its renames): \
                     renamed when the cache is next opened",
                    journal_path.display()
                )),
                (None, false) => None,
            },
        },
    }
}

/// The snapshot's entries, size and journal generation, or why it is damaged.
fn check(
    file: &mut File,
    progress: &mut dyn FnMut(u64, u64),
) -> io::Result<Result<(u64, u64, u64), String>> {
    let size = file.metadata()?.len();
    let mut head = Vec::with_capacity(HEADER_LEN);
    file.by_ref()
        .take(HEADER_LEN as u64)
        .read_to_end(&mut head)?;
    let (header, header_len) = match Header::decode_head(&head) {
        Ok(found) => found,
        Err(Rejection::Corrupt(reason) | Rejection::Incompatible(reason)) => {
            return Ok(Err(reason));
        }
    };
    // A shorter header (an older version) leaves some payload bytes in `head`.
    let claimed = header_len as u64 + header.payload_len;
    if claimed != size {
        return Ok(Err(format!(
            "the header claims {claimed} bytes but the file holds {size} (truncated or extended)"
        )));
    }
    if header.entries > header.payload_len {
        return Ok(Err(format!(
            "the header counts {} entries but the payload holds only {} bytes",
            header.entries, header.payload_len
        )));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[header_len.min(head.len())..]);
    let mut buffer = vec![0u8; 1 << 20];
    let mut done = head.len() as u64;
    progress(done, size);
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        crc.update(&buffer[..read]);
        done += read as u64;
        progress(done, size);
    }
    if done != size {
        return Ok(Err(format!(
            "the file changed while it was read ({done} bytes read of {size})"
        )));
    }
    if crc.finalize() != header.payload_crc {
        return Ok(Err("payload checksum mismatch".into()));
    }
    Ok(Ok((header.entries, size, header.generation)))
}
