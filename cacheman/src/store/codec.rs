//! How entries become payload bytes: one small trait, three implementations, and postcard's
//! row-by-row path for the file store (rows encoded while the snapshot is taken, byte vectors
//! copied whole).

use crate::shards::RowMeta;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, SeqAccess, Visitor};
use serde::{Deserializer, Serialize};

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

/// Decodes a postcard payload: a sequence of rows, each read by `seed`, and nothing after.
fn postcard_rows<'de, S>(bytes: &'de [u8], seed: S) -> Result<Vec<S::Value>, String>
where
    S: DeserializeSeed<'de> + Copy,
{
    let mut deserializer = postcard::Deserializer::from_bytes(bytes);
    let rows = BoundedRows {
        payload_len: bytes.len(),
        seed,
    }
    .deserialize(&mut deserializer)
    .map_err(|e| e.to_string())?;
    nothing_after(deserializer, "the last entry")?;
    Ok(rows)
}

/// Fails when bytes are left after `last`: a payload holds its rows and nothing else.
fn nothing_after<'de>(
    deserializer: postcard::Deserializer<'de, postcard::de_flavors::Slice<'de>>,
    last: &str,
) -> Result<(), String> {
    let rest = deserializer.finalize().map_err(|e| e.to_string())?;
    match rest.len() {
        0 => Ok(()),
        left => Err(format!("{left} unexpected bytes after {last}")),
    }
}

/// The rows of a payload, reserving up front at most as many bytes as the payload holds.
///
/// serde's `Vec` reserves up to 1 MiB for whatever count a length prefix claims; for a
/// 70-byte hostile file that is 15,000 times its size. Past this reservation the vector grows
/// only as rows really decode.
struct BoundedRows<S> {
    payload_len: usize,
    /// Reads one row.
    seed: S,
}

impl<'de, S: DeserializeSeed<'de> + Copy> DeserializeSeed<'de> for BoundedRows<S> {
    type Value = Vec<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, S: DeserializeSeed<'de> + Copy> Visitor<'de> for BoundedRows<S> {
    type Value = Vec<S::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sequence of cache rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let affordable = self.payload_len / std::mem::size_of::<S::Value>().max(1);
        let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(affordable));
        while let Some(row) = seq.next_element_seed(self.seed)? {
            rows.push(row);
        }
        Ok(rows)
    }
}

/// Reads one row of the file store's postcard payload: key, value, and an insertion stamp
/// when `stamped` (0 otherwise).
struct RowSeed<K, V> {
    stamped: bool,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for RowSeed<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for RowSeed<K, V> {}

impl<'de, K, V> DeserializeSeed<'de> for RowSeed<K, V>
where
    K: DeserializeOwned + 'static,
    V: DeserializeOwned + 'static,
{
    type Value = (K, V, RowMeta);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_tuple(if self.stamped { 3 } else { 2 }, self)
    }
}

impl<'de, K, V> Visitor<'de> for RowSeed<K, V>
where
    K: DeserializeOwned + 'static,
    V: DeserializeOwned + 'static,
{
    type Value = (K, V, RowMeta);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(if self.stamped {
            "a (key, value, stamp) row"
        } else {
            "a (key, value) row"
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let missing = |at| A::Error::invalid_length(at, &self);
        let key = seq.next_element()?.ok_or_else(|| missing(0))?;
        let value = seq.next_element()?.ok_or_else(|| missing(1))?;
        let stamp = match self.stamped {
            true => seq.next_element()?.ok_or_else(|| missing(2))?,
            false => 0,
        };
        Ok((key, value, RowMeta::stamped(stamp)))
    }
}

/// Decodes the file store's postcard payload of rows laid out as `layout` says: exactly
/// `count` rows back to back (format version 2 and later), or with `None` one sequence that
/// starts with its row count (version 1, whose rows are never sized).
pub(crate) fn decode_postcard_rows<K, V>(
    bytes: &[u8],
    count: Option<u64>,
    layout: Layout,
) -> Result<Vec<(K, V, RowMeta)>, String>
where
    K: DeserializeOwned + 'static,
    V: DeserializeOwned + 'static,
{
    match count {
        None => postcard_rows(
            bytes,
            RowSeed::<K, V> {
                stamped: layout.stamped,
                _types: PhantomData,
            },
        ),
        Some(count) => decode_postcard_rows_except(bytes, count, layout, |_| false),
    }
}

/// [`decode_postcard_rows`] of format version 2 and later, leaving out the rows whose key
/// `superseded` says a journal replaces (it is asked once per row, in order): a sized value of
/// such a row is stepped over without being decoded, any other is dropped as soon as it is
/// read, so a load neither builds nor holds the values the journal replaces. Reserves up front
/// no more rows than the payload's bytes could hold.
pub(crate) fn decode_postcard_rows_except<K, V>(
    bytes: &[u8],
    count: u64,
    layout: Layout,
    superseded: impl Fn(&K) -> bool,
) -> Result<Vec<(K, V, RowMeta)>, String>
where
    K: DeserializeOwned + 'static,
    V: DeserializeOwned + 'static,
{
    let affordable = bytes.len() / std::mem::size_of::<(K, V, RowMeta)>().max(1);
    let reserve = usize::try_from(count).unwrap_or(usize::MAX).min(affordable);
    let mut rows = Vec::with_capacity(reserve);
    let mut rest = bytes;
    for at in 0..count {
        let (row, after) = postcard_row(rest, layout, &superseded)
            .map_err(|e| format!("row {at} of {count}: {e}"))?;
        rest = after;
        if let Some(row) = row {
            rows.push(row);
        }
    }
    match rest.len() {
        0 => Ok(rows),
        left => Err(format!(
            "{left} unexpected bytes after the last of {count} entries"
        )),
    }
}

/// A row read (`None`: left out), and the bytes after it.
type RowAndRest<'a, K, V> = (Option<(K, V, RowMeta)>, &'a [u8]);

/// Reads one row from the front of `bytes`; `None` for a row `superseded` leaves out.
fn postcard_row<K, V>(
    bytes: &[u8],
    layout: Layout,
    superseded: impl Fn(&K) -> bool,
) -> Result<RowAndRest<'_, K, V>, String>
where
    K: DeserializeOwned + 'static,
    V: DeserializeOwned + 'static,
{
    let (key, rest) = postcard::take_from_bytes::<K>(bytes).map_err(|e| e.to_string())?;
    let (value, meta, rest) = postcard_row_tail::<V>(rest, layout, superseded(&key))?;
    Ok((value.map(|value| (key, value, meta)), rest))
}

/// Reads what follows a row's key at the front of `bytes`: its value (unless `skip`: a sized
/// value is then stepped over without being decoded, another is decoded and dropped), its
/// insertion stamp and its use count; with the bytes after the row.
pub(crate) fn postcard_row_tail<V>(
    bytes: &[u8],
    layout: Layout,
    skip: bool,
) -> Result<(Option<V>, RowMeta, &[u8]), String>
where
    V: DeserializeOwned + 'static,
{
    if layout.sized {
        let (body, meta, rest) = sized_row_tail(bytes, layout)?;
        let value = match skip {
            true => None,
            false => Some(sized_value::<V>(body)?),
        };
        return Ok((value, meta, rest));
    }
    let (value, rest) = postcard::take_from_bytes::<V>(bytes).map_err(|e| e.to_string())?;
    let (meta, rest) = row_meta(rest, layout)?;
    Ok((Some(value).filter(|_| !skip), meta, rest))
}

/// What follows a sized row's key at the front of `bytes`: its value's bytes (the length in
/// front of them checked against what is left, nothing decoded), its stamp and use count, and
/// the bytes after the row.
#[inline]
pub(crate) fn sized_row_tail(
    bytes: &[u8],
    layout: Layout,
) -> Result<(&[u8], RowMeta, &[u8]), String> {
    let (len, rest) = postcard::take_from_bytes::<u64>(bytes).map_err(|e| e.to_string())?;
    let Some(body) = usize::try_from(len).ok().and_then(|len| rest.get(..len)) else {
        return Err(format!(
            "a value claims {len} bytes but {} are left",
            rest.len()
        ));
    };
    let (meta, rest) = row_meta(&rest[body.len()..], layout)?;
    Ok((body, meta, rest))
}

/// Decodes a value that must take exactly `body` (a sized row's value bytes).
#[inline]
pub(crate) fn sized_value<V: DeserializeOwned + 'static>(body: &[u8]) -> Result<V, String> {
    let (value, left) = postcard::take_from_bytes::<V>(body).map_err(|e| e.to_string())?;
    match left.len() {
        0 => Ok(value),
        left => Err(format!(
            "a value claims {} bytes but decodes from {}",
            body.len(),
            body.len() - left
        )),
    }
}

/// A row's stamp and use count at the front of `bytes`, as `layout` has them.
#[inline]
fn row_meta(bytes: &[u8], layout: Layout) -> Result<(RowMeta, &[u8]), String> {
    let (stamp_ms, rest) = match layout.stamped {
        true => postcard::take_from_bytes::<u64>(bytes).map_err(|e| e.to_string())?,
        false => (0, bytes),
    };
    let (uses, rest) = match (layout.counted, rest.split_first()) {
        (false, _) => (0, rest),
        (true, Some((&uses, rest))) => (uses, rest),
        (true, None) => return Err("the row ends before its use count".into()),
    };
    Ok((RowMeta { stamp_ms, uses }, rest))
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
