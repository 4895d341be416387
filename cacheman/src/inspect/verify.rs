//! Checking a whole cache file without its types: header, length, payload checksum, counts.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::store::format::{HEADER_LEN, Header, Rejection};

/// What [`verify`] found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// Every check passed: the file is whole and would be loaded by a program of its types.
    Intact {
        /// Entries the header counts.
        entries: u64,
        /// Bytes read.
        bytes: u64,
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
/// header does not count more entries than the payload has bytes. `progress` is told the bytes
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
/// assert_eq!(found, cacheman::inspect::Verification::Intact { entries: 1, bytes: std::fs::metadata(&path).unwrap().len() });
/// ```
pub fn verify(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Verification {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Verification::Missing,
        Err(err) => return Verification::Unreadable(err.to_string()),
    };
    match check(&mut file, progress) {
        Ok(Ok(found)) => found,
        Ok(Err(reason)) => Verification::Damaged(reason),
        Err(err) => Verification::Unreadable(err.to_string()),
    }
}

fn check(
    file: &mut File,
    progress: &mut dyn FnMut(u64, u64),
) -> io::Result<Result<Verification, String>> {
    let size = file.metadata()?.len();
    let mut head = Vec::with_capacity(HEADER_LEN);
    file.by_ref()
        .take(HEADER_LEN as u64)
        .read_to_end(&mut head)?;
    let header = match Header::decode_head(&head) {
        Ok(header) => header,
        Err(Rejection::Corrupt(reason) | Rejection::Incompatible(reason)) => {
            return Ok(Err(reason));
        }
    };
    let claimed = HEADER_LEN as u64 + header.payload_len;
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
    let mut buffer = vec![0u8; 1 << 20];
    let mut done = HEADER_LEN as u64;
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
    Ok(Ok(Verification::Intact {
        entries: header.entries,
        bytes: size,
    }))
}
