//! The cache file's header: what it holds, how it is written, and every check made before the
//! payload is trusted.
//!
//! ```text
//! magic "CACHEMAN" | format version u16 | codec id u8 | flags u8 | type fingerprint u64
//! | fn fingerprint u64 | invalidation epoch u64 | entry count u64 | payload length u64
//! | payload crc32 u32 | journal generation u64 | header crc32 u32 | payload
//! ```
//! All integers are little-endian. The header checksum covers every header byte before it, so a
//! flipped bit in a fingerprint reads as corruption, not as a file of other types.
//!
//! Versions: 1 wrote a postcard payload as one sequence (its row count first); 2 writes the
//! rows alone, their count being the header's, so a save can stream rows to the file before it
//! knows how many there are. JSON and CSV payloads are the same in both. 3 adds the journal
//! generation (the `<name>.journal` that continues this snapshot, see `journal.rs`); versions 1
//! and 2 have none (generation 0) and a header 8 bytes shorter. 4 puts each postcard value's
//! encoded length before it (`codec::Layout`), so that a load steps over the values a journal
//! replaces without decoding them, and gives the flags byte a meaning: bit 0
//! ([`FLAG_COUNTED`]), rows end with a use count (bounded caches); its header is otherwise
//! version 3's. All four are read.

/// First bytes of every cache file.
pub(crate) const MAGIC: [u8; 8] = *b"CACHEMAN";
/// The version this build writes; bumped whenever the layout changes.
pub(crate) const FORMAT_VERSION: u16 = 4;
/// The oldest version this build still reads.
pub(crate) const OLDEST_READ: u16 = 1;
/// Size of the fixed header this build writes, in bytes.
pub(crate) const HEADER_LEN: usize = 8 + 2 + 1 + 1 + 8 * 5 + 4 + 8 + 4;
/// Size of the header of versions 1 and 2, which had no journal generation.
const HEADER_LEN_V2: usize = HEADER_LEN - 8;

/// The header's length for format `version`.
fn header_len(version: u16) -> usize {
    if version >= 3 {
        HEADER_LEN
    } else {
        HEADER_LEN_V2
    }
}

/// What the header says about the payload and who wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// [`FORMAT_VERSION`] when writing; what the file says when read.
    pub version: u16,
    pub codec: u8,
    pub type_fingerprint: u64,
    pub fn_fingerprint: u64,
    pub epoch: u64,
    pub entries: u64,
    pub payload_len: u64,
    pub payload_crc: u32,
    /// The generation of the journal that continues this snapshot: a journal of another
    /// generation holds nothing this snapshot lacks (0: written before journals).
    pub generation: u64,
    /// Whether postcard rows end with a use count ([`FLAG_COUNTED`] in the flags byte;
    /// version 4 on).
    pub counted: bool,
}

/// Flags byte: postcard rows end with the eviction policy's use count (bounded caches).
pub(crate) const FLAG_COUNTED: u8 = 1;

/// The flags byte of `counted` rows, and back (version 4 on: older versions wrote 0).
pub(crate) fn flags_of(counted: bool) -> u8 {
    if counted { FLAG_COUNTED } else { 0 }
}

/// What a flags byte says (`defined`: the file's version has flags; older ones wrote 0 and
/// are not read), or why this build cannot read its rows.
pub(crate) fn counted_by(flags: u8, defined: bool, what: &str) -> Result<bool, String> {
    match flags & !FLAG_COUNTED {
        0 => Ok(defined && flags & FLAG_COUNTED != 0),
        _ if !defined => Ok(false),
        unknown => Err(format!(
            "{what} flags {unknown:#04x} that this build does not know (written by a newer one)"
        )),
    }
}

/// Why a file was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Damaged or not a cacheman file at all.
    Corrupt(String),
    /// A whole file, but written for something else.
    Incompatible(String),
}

impl Header {
    /// The header in this build's layout (that of versions 3 and 4; [`Header::version`] is written as it is,
    /// for tests of older files).
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&MAGIC);
        put(&self.version.to_le_bytes());
        put(&[self.codec, flags_of(self.counted)]);
        put(&self.type_fingerprint.to_le_bytes());
        put(&self.fn_fingerprint.to_le_bytes());
        put(&self.epoch.to_le_bytes());
        put(&self.entries.to_le_bytes());
        put(&self.payload_len.to_le_bytes());
        put(&self.payload_crc.to_le_bytes());
        put(&self.generation.to_le_bytes());
        let header_crc = crc32fast::hash(&out[..HEADER_LEN - 4]);
        out[HEADER_LEN - 4..].copy_from_slice(&header_crc.to_le_bytes());
        out
    }

    /// The header in the layout of versions 1 and 2 (no generation), for the fuzz target's
    /// files of older versions and for tests.
    pub(crate) fn encode_v2(&self) -> Vec<u8> {
        let mut bytes = self.encode()[..HEADER_LEN_V2 - 4].to_vec();
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Reads and checks the header alone from the first bytes of a file (as many as the
    /// header of its version takes, or the reason they are too few): length, magic, header
    /// checksum and format version. Returns it with its length; the payload is not looked at.
    pub(crate) fn decode_head(file: &[u8]) -> Result<(Header, usize), Rejection> {
        // The magic first, on whatever prefix there is: a short foreign file is "not ours",
        // which says more than "too short".
        let prefix = file.len().min(MAGIC.len());
        if file[..prefix] != MAGIC[..prefix] {
            return Err(Rejection::Corrupt(
                "it does not start with the cacheman magic bytes".into(),
            ));
        }
        if file.len() < HEADER_LEN_V2 {
            return Err(Rejection::Corrupt(format!(
                "{} bytes is shorter than the {HEADER_LEN_V2}-byte header",
                file.len()
            )));
        }
        // The version says how long the header is; the header's checksum then vouches for it.
        let len = header_len(u16::from_le_bytes([file[8], file[9]]));
        if file.len() < len {
            return Err(Rejection::Corrupt(format!(
                "{} bytes is shorter than the {len}-byte header",
                file.len()
            )));
        }
        let head = &file[..len];
        let stored_header_crc = u32_at(head, len - 4);
        if crc32fast::hash(&head[..len - 4]) != stored_header_crc {
            return Err(Rejection::Corrupt("header checksum mismatch".into()));
        }
        let version = u16::from_le_bytes([head[8], head[9]]);
        if !(OLDEST_READ..=FORMAT_VERSION).contains(&version) {
            return Err(Rejection::Incompatible(format!(
                "file format version {version} (this build reads versions {OLDEST_READ} to \
                 {FORMAT_VERSION})"
            )));
        }
        let counted =
            counted_by(head[11], version >= 4, "header").map_err(Rejection::Incompatible)?;
        let header = Header {
            version,
            codec: head[10],
            type_fingerprint: u64_at(head, 12),
            fn_fingerprint: u64_at(head, 20),
            epoch: u64_at(head, 28),
            entries: u64_at(head, 36),
            payload_len: u64_at(head, 44),
            payload_crc: u32_at(head, 52),
            generation: if version >= 3 { u64_at(head, 56) } else { 0 },
            counted,
        };
        Ok((header, len))
    }

    /// Reads and checks the header of a whole file, and returns it with the payload.
    ///
    /// Checks, in order: length, magic, header checksum, format version, that the payload length
    /// matches the file's real size, and the payload checksum. Nothing is allocated here.
    pub(crate) fn decode(file: &[u8]) -> Result<(Header, &[u8]), Rejection> {
        let (header, len) = Header::decode_head(file)?;
        let payload = &file[len..];
        if header.payload_len != payload.len() as u64 {
            return Err(Rejection::Corrupt(format!(
                "header claims a {}-byte payload but the file holds {} bytes after the header",
                header.payload_len,
                payload.len()
            )));
        }
        if crc32fast::hash(payload) != header.payload_crc {
            return Err(Rejection::Corrupt("payload checksum mismatch".into()));
        }
        Ok((header, payload))
    }
}

/// The little-endian `u64` at `at` (which the caller has checked is in bounds).
pub(super) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(buf)
}

/// The little-endian `u32` at `at` (which the caller has checked is in bounds).
pub(super) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut buf = [0u8; 4];
    buf.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(buf)
}

/// FNV-1a, 64 bits: a fingerprint that stays the same across Rust releases, unlike
/// `DefaultHasher`, so files written by one build are recognised by the next.
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separates ["ab", "c"] from ["a", "bc"].
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            version: FORMAT_VERSION,
            codec: 1,
            type_fingerprint: 0x1111,
            fn_fingerprint: 0x2222,
            epoch: 3,
            entries: 2,
            payload_len: 4,
            payload_crc: crc32fast::hash(b"abcd"),
            generation: 5,
            counted: true,
        }
    }

    fn file_of(header: Header, payload: &[u8]) -> Vec<u8> {
        let mut file = header.encode().to_vec();
        file.extend_from_slice(payload);
        file
    }

    #[test]
    fn header_round_trips() {
        let file = file_of(sample(), b"abcd");
        let (header, payload) = Header::decode(&file).unwrap();
        assert_eq!(header, sample());
        assert_eq!(payload, b"abcd");
    }

    #[test]
    fn every_truncation_is_rejected() {
        let file = file_of(sample(), b"abcd");
        for len in 0..file.len() {
            assert!(
                Header::decode(&file[..len]).is_err(),
                "length {len} accepted"
            );
        }
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let file = file_of(sample(), b"abcd");
        for byte in 0..file.len() {
            for bit in 0..8 {
                let mut bad = file.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    Header::decode(&bad).is_err(),
                    "flip at {byte}:{bit} accepted"
                );
            }
        }
    }

    #[test]
    fn a_huge_length_field_is_rejected_without_allocating() {
        let mut header = sample();
        header.payload_len = u64::MAX;
        let file = file_of(header, b"abcd");
        assert!(matches!(Header::decode(&file), Err(Rejection::Corrupt(_))));
    }

    #[test]
    fn another_version_is_incompatible_not_corrupt() {
        for version in [0, FORMAT_VERSION + 1, 9] {
            let mut header = sample();
            header.version = version;
            let file = match version {
                3.. => file_of(header, b"abcd"),
                _ => [header.encode_v2(), b"abcd".to_vec()].concat(),
            };
            assert!(
                matches!(Header::decode(&file), Err(Rejection::Incompatible(_))),
                "version {version}"
            );
        }
    }

    #[test]
    fn every_version_since_the_oldest_read_is_read() {
        for version in OLDEST_READ..=FORMAT_VERSION {
            let mut header = sample();
            header.version = version;
            let mut file = match version {
                3.. => header.encode().to_vec(),
                _ => header.encode_v2(),
            };
            file.extend_from_slice(b"abcd");
            let (read, payload) = Header::decode(&file).unwrap();
            assert_eq!(read.version, version);
            assert_eq!(payload, b"abcd");
            assert_eq!(read.generation, if version >= 3 { 5 } else { 0 });
            // The flag was never written before version 4, and is not read there.
            assert_eq!(read.counted, version >= 4);
        }
    }

    #[test]
    fn flags_this_build_does_not_know_are_incompatible_from_version_4() {
        let mut file = file_of(sample(), b"abcd");
        file[11] = 0x81;
        // Make the header checksum good again: the flags are read, not damaged.
        let crc = crc32fast::hash(&file[..HEADER_LEN - 4]);
        file[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            Header::decode(&file),
            Err(Rejection::Incompatible(_))
        ));
    }

    #[test]
    fn fnv_separates_parts() {
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
        assert_eq!(fnv1a(&[b"x"]), fnv1a(&[b"x"]));
    }
}
