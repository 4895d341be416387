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

    /// Encodes `rows` into a buffer that starts with room for `expected` bytes (the size of the
    /// last save is a good guess): a large payload then grows without copying itself over and
    /// over.
    pub(crate) fn encode<R: Serialize>(
        self,
        rows: &[R],
        expected: usize,
    ) -> Result<Vec<u8>, String> {
        let out = Vec::with_capacity(expected);
        match self {
            Codec::Postcard => Postcard::encode(rows, out),
            Codec::Json => Json::encode(rows, out),
            Codec::Csv => Csv::encode(rows, out),
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
    fn encode<R: Serialize>(rows: &[R], out: Vec<u8>) -> Result<Vec<u8>, String>;
    fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<R>, String>;
}

struct Postcard;

/// Appends the postcard encoding of `value` to `out`.
pub(crate) fn postcard_append<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    postcard::serialize_with_flavor(value, Append(out)).map_err(|e| e.to_string())
}

/// A postcard output that pushes onto a borrowed vector: the stock vector output cannot start
/// from a vector with room reserved, and the stock `Extend` output pays an `extend` call for
/// each byte (serde hands a `Vec<u8>` over one byte at a time).
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline(always)]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

impl Encoding for Postcard {
    const NAME: &'static str = "postcard";

    fn encode<R: Serialize>(rows: &[R], mut out: Vec<u8>) -> Result<Vec<u8>, String> {
        postcard_append(rows, &mut out)?;
        Ok(out)
    }

    fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<R>, String> {
        let mut deserializer = postcard::Deserializer::from_bytes(bytes);
        let rows = serde::de::DeserializeSeed::deserialize(
            BoundedRows::<R>::within(bytes.len()),
            &mut deserializer,
        )
        .map_err(|e| e.to_string())?;
        let rest = deserializer.finalize().map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!(
                "{} unexpected bytes after the last entry",
                rest.len()
            ));
        }
        Ok(rows)
    }
}

/// The rows of a payload, reserving up front at most as many bytes as the payload holds.
///
/// serde's `Vec` reserves up to 1 MiB for whatever count a length prefix claims; for a
/// 70-byte hostile file that is 15,000 times its size. Past this reservation the vector grows
/// only as rows really decode.
struct BoundedRows<R> {
    payload_len: usize,
    _rows: std::marker::PhantomData<fn() -> R>,
}

impl<R> BoundedRows<R> {
    fn within(payload_len: usize) -> Self {
        BoundedRows {
            payload_len,
            _rows: std::marker::PhantomData,
        }
    }
}

impl<'de, R: DeserializeOwned> serde::de::DeserializeSeed<'de> for BoundedRows<R> {
    type Value = Vec<R>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Vec<R>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, R: DeserializeOwned> serde::de::Visitor<'de> for BoundedRows<R> {
    type Value = Vec<R>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sequence of cache rows")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<R>, A::Error> {
        let affordable = self.payload_len / std::mem::size_of::<R>().max(1);
        let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(affordable));
        while let Some(row) = seq.next_element()? {
            rows.push(row);
        }
        Ok(rows)
    }
}

struct Json;

impl Encoding for Json {
    const NAME: &'static str = "JSON";

    fn encode<R: Serialize>(rows: &[R], mut out: Vec<u8>) -> Result<Vec<u8>, String> {
        serde_json::to_writer(&mut out, rows).map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<R>, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

struct Csv;

impl Encoding for Csv {
    const NAME: &'static str = "CSV";

    fn encode<R: Serialize>(rows: &[R], out: Vec<u8>) -> Result<Vec<u8>, String> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(out);
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
            let bytes = codec.encode(&rows, 0).unwrap();
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
