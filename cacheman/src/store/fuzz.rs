//! The file decoder, opened up for the fuzz target in `fuzz/` and the hostile-file tests:
//! hidden from the docs, and not part of the stable API.
//!
//! Random bytes almost never pass the header and payload checksums, so a fuzzer that only fed
//! whole files would never reach the codecs. [`file_for`] wraps any payload in a header that
//! passes every check, so the codecs get the hostile bytes themselves.

use crate::shards::RowMeta;
use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{Layout, PostcardRows};
use super::file_store::join::{self, SizedRows};
use super::format::{FORMAT_VERSION, Header};
use super::journal::{self, JournalHeader};
use super::{Codec, FileStore, Identity};

/// How many row kinds there are; [`file_for`] and [`decode_as`] take `kind % KINDS`.
pub const KINDS: u8 = 8;

/// The function fingerprint every fuzzed file claims.
const FN_FINGERPRINT: u64 = 0x00f0_22ed;

/// A whole cache file of row kind `kind` whose header passes every check (magic, version,
/// checksums, identity) and claims `entries` rows, followed by `payload` as it is.
///
/// Kinds: 0 postcard `(u64, String)`; 1 postcard `(String, Vec<u32>)` with insertion stamps;
/// 2 JSON `(u64, String)`; 3 CSV `(u64, String)`; 4 postcard `(u64, Vec<u8>)` with use counts
/// (a bounded cache's rows); 5 and 6 as 0
/// and 4 in format version 1, whose postcard payload starts with its row count; 7 as 0 in
/// format version 3, whose values have no length in front (the others are in the version this
/// build writes, whose postcard rows are counted by the header alone and whose values have
/// their length in front). Eight kinds: the fuzz target picks one with three bits.
pub fn file_for(kind: u8, entries: u64, payload: &[u8]) -> Vec<u8> {
    let identity = identity_of(kind);
    let version = match kind % KINDS {
        5 | 6 => 1,
        7 => 3,
        _ => FORMAT_VERSION,
    };
    let header = Header {
        version,
        codec: identity.codec.id(),
        type_fingerprint: identity.type_fingerprint,
        fn_fingerprint: identity.fn_fingerprint,
        epoch: 1,
        entries,
        payload_len: payload.len() as u64,
        payload_crc: crc32fast::hash(payload),
        generation: 0,
        counted: identity.counted && version >= 4,
    };
    let mut file = match version {
        3.. => header.encode().to_vec(),
        _ => header.encode_v2(),
    };
    file.extend_from_slice(payload);
    file
}

/// Decodes `file` as a cache file of row kind `kind` (see [`file_for`]), exactly as loading it
/// from disk would: the number of rows, or the error's message.
pub fn decode_as(kind: u8, file: &[u8]) -> Result<usize, String> {
    match kind % KINDS {
        0 | 2 | 3 | 5 | 7 => decode::<u64, String>(kind, file),
        1 => decode::<String, Vec<u32>>(kind, file),
        _ => decode::<u64, Vec<u8>>(kind, file),
    }
}

/// The payload bytes `rows` encode to in row kind `kind`'s codec, for building valid files.
pub fn payload_for(kind: u8, rows: &[(u64, String)]) -> Vec<u8> {
    match kind % KINDS {
        1 => {
            let stamped = rows
                .iter()
                .map(|(k, v)| (v.clone(), vec![*k as u32], RowMeta::stamped(*k)));
            postcard_rows(identity_of(kind).layout(), stamped)
        }
        0 => postcard_rows(
            identity_of(kind).layout(),
            rows.iter()
                .map(|(k, v)| (*k, v.clone(), RowMeta::default())),
        ),
        4 => {
            let counted = rows.iter().map(|(k, v)| {
                let uses = (*k % 4) as u8;
                (*k, bytes_of(v), RowMeta { stamp_ms: 0, uses })
            });
            postcard_rows(identity_of(kind).layout(), counted)
        }
        7 => postcard_rows(
            UNSIZED,
            rows.iter()
                .map(|(k, v)| (*k, v.clone(), RowMeta::default())),
        ),
        5 => encode(Codec::Postcard, rows),
        6 => {
            let bytes: Vec<(u64, Vec<u8>)> = rows.iter().map(|(k, v)| (*k, bytes_of(v))).collect();
            encode(Codec::Postcard, &bytes)
        }
        _ => encode(identity_of(kind).codec, rows),
    }
}

fn bytes_of(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

/// The rows of format versions 2 and 3: no stamps, no value lengths.
const UNSIZED: Layout = Layout {
    stamped: false,
    sized: false,
    counted: false,
};

/// Rows as the file store writes them since version 2: back to back, with no count in front.
fn postcard_rows<K, V>(layout: Layout, rows: impl Iterator<Item = (K, V, RowMeta)>) -> Vec<u8>
where
    K: Serialize + 'static,
    V: Serialize + 'static,
{
    let mut encoder = PostcardRows::<K, V>::new("fuzz", layout, 0);
    for (key, value, stamp) in rows {
        if encoder.put(&key, &value, stamp).is_err() {
            return Vec::new();
        }
    }
    encoder.bytes().to_vec()
}

/// A whole payload as one serde sequence, as format version 1 wrote it (JSON and CSV still are).
fn encode<R: Serialize>(codec: Codec, rows: &[R]) -> Vec<u8> {
    codec.encode(rows, 0).unwrap_or_default()
}

fn identity_of(kind: u8) -> Identity {
    match kind % KINDS {
        0 | 5 | 7 => Identity::new::<u64, String>(Codec::Postcard, FN_FINGERPRINT, false),
        1 => Identity::new::<String, Vec<u32>>(Codec::Postcard, FN_FINGERPRINT, true),
        2 => Identity::new::<u64, String>(Codec::Json, FN_FINGERPRINT, false),
        3 => Identity::new::<u64, String>(Codec::Csv, FN_FINGERPRINT, false),
        _ => {
            Identity::new::<u64, Vec<u8>>(Codec::Postcard, FN_FINGERPRINT, false).with_counts(true)
        }
    }
}

fn decode<K, V>(kind: u8, file: &[u8]) -> Result<usize, String>
where
    K: std::hash::Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let store: FileStore<K, V> =
        FileStore::new("fuzz", PathBuf::from("fuzz.cache"), identity_of(kind));
    store
        .decode(file)
        .map(|loaded| loaded.rows.len())
        .map_err(|e| e.to_string())
}

/// A whole journal of row kind 0 (`u64` keys, `String` values) whose header passes every
/// check, followed by `frames` as they are.
pub fn journal_file_for(frames: &[u8]) -> Vec<u8> {
    let mut file = JournalHeader::of(&identity_of(0), 1).encode();
    file.extend_from_slice(frames);
    file
}

/// One journal frame's changes for [`journal_frames_for`]: rows, and removed keys.
pub type FrameRows = (Vec<(u64, String)>, Vec<u64>);

/// Frames back to back, each of `(rows, removed keys)`, as saves append them (row kind 0).
pub fn journal_frames_for(frames: &[FrameRows]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (rows, removed) in frames {
        let rows: Vec<(u64, String, RowMeta)> = rows
            .iter()
            .map(|(k, v)| (*k, v.clone(), RowMeta::default()))
            .collect();
        if let Ok(frame) = journal::encode_frame("fuzz", identity_of(0).layout(), &rows, removed) {
            bytes.extend_from_slice(&frame);
        }
    }
    bytes
}

/// Decodes `file` as a whole journal of row kind 0, as loading one does: its header, then each
/// frame (a torn last frame dropped). The rows and removed keys of its frames, or the error's
/// message.
pub fn decode_journal(file: &[u8]) -> Result<usize, String> {
    let header = JournalHeader::decode(file)?;
    if !header.matches(&identity_of(0)) {
        return Err("a journal of other rows".into());
    }
    let frames = file.get(journal::HEADER_LEN as usize..).unwrap_or(&[]);
    let scan = journal::scan(frames)?;
    let mut named = 0;
    for body in &scan.bodies {
        let frame = journal::decode_body::<u64, String>(body, header.layout(false))?;
        named += frame.rows.len() + frame.removed.len();
    }
    // The indexed replay reads the frames its own way (keys first, then the last puts'
    // values): over an empty snapshot, it must take them too.
    if header.layout(false).sized {
        let empty = SizedRows {
            bytes: &[],
            count: 0,
            layout: identity_of(0).layout(),
        };
        let hasher = crate::shards::Hasher::default();
        join::replay_over::<u64, String, _>(empty, &scan.bodies, header.layout(false), &hasher)
            .map_err(|damage| format!("the indexed replay refused them: {damage:?}"))?;
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_files_of_every_kind_decode() {
        let rows = vec![(1, "one".to_string()), (2, "two".into())];
        for kind in 0..KINDS {
            let file = file_for(kind, 2, &payload_for(kind, &rows));
            assert_eq!(decode_as(kind, &file), Ok(2), "kind {kind}");
            // And a lying count is caught.
            let file = file_for(kind, 3, &payload_for(kind, &rows));
            assert!(decode_as(kind, &file).is_err(), "kind {kind}");
        }
    }

    #[test]
    fn valid_journals_decode_and_a_lying_count_is_caught() {
        let frames = journal_frames_for(&[
            (vec![(1, "one".into()), (2, "two".into())], vec![]),
            (vec![], vec![1]),
        ]);
        assert_eq!(decode_journal(&journal_file_for(&frames)), Ok(3));
        let mut lying = journal_file_for(&frames);
        // The first frame's row count (after its 8-byte head and kind byte): checksummed.
        lying[journal::HEADER_LEN as usize + 9] = 3;
        assert!(decode_journal(&lying).is_err());
    }
}
