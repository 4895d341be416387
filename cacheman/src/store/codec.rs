//! How entries become payload bytes: one small trait, three implementations.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The serialization format of a cache file's payload.
///
/// The header of every file is cacheman's own; the codec only decides how the entries after it
/// are written. Postcard is compact and fast; JSON and CSV are for files that other tools read.
///
/// ```
/// use cacheman::{CacheOptions, Codec};
///
/// let options = CacheOptions::new().codec(Codec::Json);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Codec {
    /// [postcard](https://docs.rs/postcard): compact binary, the default.
    #[default]
    Postcard,
    /// JSON: an array of `[key, value]` pairs.
    Json,
    /// CSV: one `key,value` row per entry, without a header row, like CacheMan's `CSVCache`.
    /// Keys and values must serialize as flat records (numbers, strings, flat tuples or structs).
    Csv,
}

impl Codec {
    /// The id written in the file header.
    pub(crate) fn id(self) -> u8 {
        match self {
            Codec::Postcard => 1,
            Codec::Json => 2,
            Codec::Csv => 3,
        }
    }

    /// The codec's name, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Codec::Postcard => Postcard::NAME,
            Codec::Json => Json::NAME,
            Codec::Csv => Csv::NAME,
        }
    }

    pub(crate) fn encode<R: Serialize>(self, rows: &[R]) -> Result<Vec<u8>, String> {
        match self {
            Codec::Postcard => Postcard::encode(rows),
            Codec::Json => Json::encode(rows),
            Codec::Csv => Csv::encode(rows),
        }
    }

    pub(crate) fn decode<R: DeserializeOwned>(self, bytes: &[u8]) -> Result<Vec<R>, String> {
        match self {
            Codec::Postcard => Postcard::decode(bytes),
            Codec::Json => Json::decode(bytes),
            Codec::Csv => Csv::decode(bytes),
        }
    }
}

/// One payload format. Decoders get bytes whose checksum already matched, but must still treat
/// them as hostile: errors, never panics, and no allocation beyond what the bytes justify.
trait Encoding {
    const NAME: &'static str;
    fn encode<R: Serialize>(rows: &[R]) -> Result<Vec<u8>, String>;
    fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<R>, String>;
}

struct Postcard;

impl Encoding for Postcard {
    const NAME: &'static str = "postcard";

    fn encode<R: Serialize>(rows: &[R]) -> Result<Vec<u8>, String> {
        postcard::to_stdvec(rows).map_err(|e| e.to_string())
    }

    fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<R>, String> {
        // serde's Vec visitor caps its up-front reservation, so a huge length prefix cannot
        // allocate more than the bytes that follow can fill.
        let (rows, rest) = postcard::take_from_bytes::<Vec<R>>(bytes).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!(
                "{} unexpected bytes after the last entry",
                rest.len()
            ));
        }
        Ok(rows)
    }
}

struct Json;

impl Encoding for Json {
    const NAME: &'static str = "JSON";

    fn encode<R: Serialize>(rows: &[R]) -> Result<Vec<u8>, String> {
        serde_json::to_vec(rows).map_err(|e| e.to_string())
    }

    fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<R>, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

struct Csv;

impl Encoding for Csv {
    const NAME: &'static str = "CSV";

    fn encode<R: Serialize>(rows: &[R]) -> Result<Vec<u8>, String> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for row in rows {
            writer.serialize(row).map_err(|e| e.to_string())?;
        }
        writer.into_inner().map_err(|e| e.to_string())
    }

    fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<R>, String> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes)
            .deserialize()
            .collect::<Result<Vec<R>, _>>()
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Codec; 3] = [Codec::Postcard, Codec::Json, Codec::Csv];

    #[test]
    fn every_codec_round_trips_flat_rows() {
        let rows = vec![(1u64, "one".to_string()), (2, "two, with a comma".into())];
        for codec in ALL {
            let bytes = codec.encode(&rows).unwrap();
            let back: Vec<(u64, String)> = codec.decode(&bytes).unwrap();
            assert_eq!(back, rows, "{codec:?}");
        }
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        for codec in ALL {
            let garbage = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0x0f, b'"', b','];
            assert!(
                codec.decode::<(u64, String)>(&garbage).is_err(),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn a_huge_postcard_length_prefix_fails_cleanly() {
        // A varint claiming 2^62 entries followed by nothing.
        let bytes = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40];
        assert!(Codec::Postcard.decode::<(u64, u64)>(&bytes).is_err());
    }
}
