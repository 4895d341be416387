//! How entries become payload bytes: one small trait, three implementations, and postcard's
//! row-by-row path for the file store (rows encoded while the snapshot is taken, byte vectors
//! copied whole).

use crate::shards::RowMeta;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

mod rows;
pub(crate) use rows::{
    decode_postcard_rows, decode_postcard_rows_except, postcard_row_tail, sized_row_tail,
    sized_value,
};
use rows::{nothing_after, postcard_rows};

/// How the file store's postcard rows are laid out: what the file's format version (or the
/// journal's) and the cache's options say follows each key.
///
/// ```text
/// key | value length (varint, if sized) | value | insertion stamp (varint, if stamped)
/// | use count (u8, if counted)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Rows carry insertion stamps (caches with a time-to-live).
    pub stamped: bool,
    /// Each value's encoded length goes before it (snapshot format version 4, journal
    /// version 2): a load steps over a value that the journal replaces without decoding it.
    pub sized: bool,
    /// Rows carry the eviction policy's use count (bounded caches, version 4 and journal
    /// version 2, when the header's flag says so).
    pub counted: bool,
}

impl Layout {
    /// The layout this build writes for a cache whose rows are `stamped` and `counted`.
    pub(crate) fn current(stamped: bool, counted: bool) -> Self {
        Layout {
            stamped,
            sized: true,
            counted,
        }
    }
}

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

/// A stable hash of the postcard encoding of `value`, computed without building the encoding:
/// the stamp of a value in the dependency graph (equal values encode, and so hash, alike in
/// every process).
pub(crate) fn postcard_fingerprint<T: Serialize + ?Sized>(value: &T) -> Option<u64> {
    use std::hash::Hasher;
    let mut hasher = crate::stable_hash::StableHasher::default();
    postcard::serialize_with_flavor(value, Hashing(&mut hasher)).ok()?;
    Some(hasher.finish())
}

/// A postcard output that hashes what it is given.
struct Hashing<'a>(&'a mut crate::stable_hash::StableHasher);

impl postcard::ser_flavors::Flavor for Hashing<'_> {
    type Output = ();

    #[inline(always)]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        std::hash::Hasher::write(self.0, &[byte]);
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        std::hash::Hasher::write(self.0, bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
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
        postcard_rows(bytes, PhantomData::<R>)
    }
}

/// Snapshot rows encoded into postcard as the shards are copied, instead of cloned first: no
/// allocation per entry, and one pass over the values instead of two. The bytes are the rows
/// back to back, as format version 2 stores them; the caller takes them out as they pile up
/// ([`PostcardRows::take_bytes`]) and keeps the count for the header.
pub(crate) struct PostcardRows<K, V> {
    bytes: Vec<u8>,
    rows: u64,
    layout: Layout,
    /// The cache's name, for errors.
    cache: String,
    _types: PhantomData<fn(&K, &V)>,
}

impl<K, V> PostcardRows<K, V>
where
    K: Serialize + 'static,
    V: Serialize + 'static,
{
    /// An empty encoder for cache `cache`, with room for `capacity` bytes.
    pub(crate) fn new(cache: &str, layout: Layout, capacity: usize) -> Self {
        PostcardRows {
            bytes: Vec::with_capacity(capacity),
            rows: 0,
            layout,
            cache: cache.to_owned(),
            _types: PhantomData,
        }
    }

    /// Rows put so far, those whose bytes were taken included.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// The bytes of the rows put since the last [`PostcardRows::take_bytes`].
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Hands over the bytes held, going on in `spare` (emptied first); the row count stays.
    pub(crate) fn take_bytes(&mut self, mut spare: Vec<u8>) -> Vec<u8> {
        spare.clear();
        std::mem::replace(&mut self.bytes, spare)
    }

    /// Goes back to `rows` rows, of which `bytes` bytes are still held.
    pub(crate) fn truncate(&mut self, rows: u64, bytes: usize) {
        self.rows = rows;
        self.bytes.truncate(bytes);
    }

    #[inline]
    pub(crate) fn put(&mut self, key: &K, value: &V, meta: RowMeta) -> Result<(), crate::Error> {
        let start = self.bytes.len();
        let put = self.put_fields(key, value, meta);
        if let Err(message) = put {
            // No half row stays behind.
            self.bytes.truncate(start);
            return Err(crate::Error::Codec {
                cache: self.cache.clone(),
                action: "encode",
                codec: Postcard::NAME,
                message,
            });
        }
        self.rows += 1;
        Ok(())
    }

    /// Appends one row's fields as [`Layout`] lays them out (unsized, the bytes of the tuple
    /// serde writes).
    #[inline]
    fn put_fields(&mut self, key: &K, value: &V, meta: RowMeta) -> Result<(), String> {
        postcard_append(key, &mut self.bytes)?;
        let at = self.bytes.len();
        postcard_append(value, &mut self.bytes)?;
        if self.layout.sized {
            // The length goes in front of the value once it is known.
            let mut prefix = [0u8; 10];
            let len = postcard::to_slice(&((self.bytes.len() - at) as u64), &mut prefix)
                .map_err(|e| e.to_string())?
                .len();
            self.bytes.extend_from_slice(&prefix[..len]);
            self.bytes[at..].rotate_right(len);
        }
        if self.layout.stamped {
            postcard_append(&meta.stamp_ms, &mut self.bytes)?;
        }
        if self.layout.counted {
            self.bytes.push(meta.uses);
        }
        Ok(())
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

/// The postcard encoding of one item (a shared store's entry: its key and value).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn postcard_one<T: Serialize + ?Sized>(item: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    postcard_append(item, &mut out)?;
    Ok(out)
}

/// Decodes what [`postcard_one`] wrote, treating the bytes as hostile: an error, never a
/// panic, and bytes left over are an error. A length prefix longer than the bytes left
/// reserves at most serde's cautious bound (1 MiB) before the bytes run out.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn postcard_from_one<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<T, String> {
    let mut deserializer = postcard::Deserializer::from_bytes(bytes);
    let value = T::deserialize(&mut deserializer).map_err(|e| e.to_string())?;
    nothing_after(deserializer, "the value")?;
    Ok(value)
}

#[cfg(test)]
mod tests;
