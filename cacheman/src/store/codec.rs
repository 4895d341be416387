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
    let dropped = superseded(&key);
    let (value, rest) = match layout.sized {
        true => {
            let (len, rest) = postcard::take_from_bytes::<u64>(rest).map_err(|e| e.to_string())?;
            let Some(body) = usize::try_from(len).ok().and_then(|len| rest.get(..len)) else {
                return Err(format!(
                    "a value claims {len} bytes but {} are left",
                    rest.len()
                ));
            };
            let value = match dropped {
                true => None,
                false => {
                    let (value, left) =
                        postcard::take_from_bytes::<V>(body).map_err(|e| e.to_string())?;
                    if !left.is_empty() {
                        return Err(format!(
                            "a value claims {len} bytes but decodes from {}",
                            body.len() - left.len()
                        ));
                    }
                    Some(value)
                }
            };
            (value, &rest[body.len()..])
        }
        false => {
            let (value, rest) = postcard::take_from_bytes::<V>(rest).map_err(|e| e.to_string())?;
            (Some(value).filter(|_| !dropped), rest)
        }
    };
    let (stamp_ms, rest) = match layout.stamped {
        true => postcard::take_from_bytes::<u64>(rest).map_err(|e| e.to_string())?,
        false => (0, rest),
    };
    let (uses, rest) = match (layout.counted, rest.split_first()) {
        (false, _) => (0, rest),
        (true, Some((&uses, rest))) => (uses, rest),
        (true, None) => return Err("the row ends before its use count".into()),
    };
    let meta = RowMeta { stamp_ms, uses };
    Ok((value.map(|value| (key, value, meta)), rest))
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

    /// Every layout a file has had: unsized rows (versions 1 to 3), sized ones (4), with or
    /// without stamps, and sized ones with use counts.
    const LAYOUTS: [Layout; 6] = {
        const fn layout(stamped: bool, sized: bool, counted: bool) -> Layout {
            Layout {
                stamped,
                sized,
                counted,
            }
        }
        [
            layout(false, false, false),
            layout(true, false, false),
            layout(false, true, false),
            layout(true, true, false),
            layout(false, true, true),
            layout(true, true, true),
        ]
    };

    #[test]
    fn rows_encoded_as_the_snapshot_is_taken_are_the_bytes_serde_writes() {
        let rows: Vec<(u64, Vec<u8>, RowMeta)> = (0..300)
            .map(|i| {
                let meta = RowMeta {
                    stamp_ms: i * 1_000,
                    uses: (i % 4) as u8,
                };
                (i, (0..i as u8).collect(), meta)
            })
            .collect();
        for layout in LAYOUTS {
            let mut encoder = PostcardRows::<u64, Vec<u8>>::new("c", layout, 0);
            for (k, v, meta) in &rows {
                encoder.put(k, v, *meta).unwrap();
            }
            // Rows back to back, without the sequence's count; unsized, serde's tuples;
            // sized, the value's length in front of it; counted, the count at the end.
            let row_by_row: Vec<u8> = rows
                .iter()
                .flat_map(|(k, v, meta)| {
                    let value = postcard::to_allocvec(v).unwrap();
                    let mut row = postcard::to_allocvec(k).unwrap();
                    if layout.sized {
                        row.extend(postcard::to_allocvec(&(value.len() as u64)).unwrap());
                    }
                    row.extend(value);
                    if layout.stamped {
                        row.extend(postcard::to_allocvec(&meta.stamp_ms).unwrap());
                    }
                    if layout.counted {
                        row.push(meta.uses);
                    }
                    row
                })
                .collect();
            assert_eq!(encoder.bytes(), &row_by_row[..], "{layout:?}");
            if !layout.sized {
                let tuples: Vec<u8> = rows
                    .iter()
                    .flat_map(|(k, v, meta)| match layout.stamped {
                        true => postcard::to_allocvec(&(k, v, meta.stamp_ms)).unwrap(),
                        false => postcard::to_allocvec(&(k, v)).unwrap(),
                    })
                    .collect();
                assert_eq!(encoder.bytes(), &tuples[..], "{layout:?}");
            }
            assert_eq!(encoder.rows(), 300);
            let back: Vec<(u64, Vec<u8>, RowMeta)> =
                decode_postcard_rows(encoder.bytes(), Some(300), layout).unwrap();
            let want: Vec<_> = rows
                .iter()
                .map(|(k, v, meta)| {
                    let meta = RowMeta {
                        stamp_ms: if layout.stamped { meta.stamp_ms } else { 0 },
                        uses: if layout.counted { meta.uses } else { 0 },
                    };
                    (*k, v.clone(), meta)
                })
                .collect();
            assert_eq!(back, want, "{layout:?}");
            if layout.sized {
                continue;
            }
            // Version 1 files: the same rows as one sequence, its count first.
            let sequence = match layout.stamped {
                true => {
                    let rows: Vec<_> = rows.iter().map(|(k, v, m)| (k, v, m.stamp_ms)).collect();
                    Codec::Postcard.encode(&rows, 0).unwrap()
                }
                false => {
                    let pairs: Vec<_> = rows.iter().map(|(k, v, _)| (k, v)).collect();
                    Codec::Postcard.encode(&pairs, 0).unwrap()
                }
            };
            let back: Vec<(u64, Vec<u8>, RowMeta)> =
                decode_postcard_rows(&sequence, None, layout).unwrap();
            assert_eq!(back, want);
        }
    }

    #[test]
    fn superseded_rows_are_left_out_and_sized_values_not_decoded() {
        let sized = Layout::current(false, false);
        let mut encoder = PostcardRows::<u64, String>::new("c", sized, 0);
        for k in 0..3 {
            encoder
                .put(&k, &format!("value {k}"), RowMeta::default())
                .unwrap();
        }
        let mut bytes = encoder.bytes().to_vec();
        // Row 1's value ("value 1", after its key and length) made invalid UTF-8.
        let at = bytes.windows(7).position(|w| w == b"value 1").unwrap();
        bytes[at] = 0xff;
        let kept = decode_postcard_rows_except::<u64, String>(&bytes, 3, sized, |k| *k == 1);
        let keys: Vec<u64> = kept.unwrap().into_iter().map(|(k, _, _)| k).collect();
        assert_eq!(keys, vec![0, 2]);
        // Read, it does not decode.
        assert!(decode_postcard_rows_except::<u64, String>(&bytes, 3, sized, |_| false).is_err());
    }

    #[test]
    fn a_value_length_that_is_not_the_values_is_an_error() {
        let sized = Layout::current(false, false);
        // Key 1, a length of 3, then a 2-byte string ("ab") and one byte more.
        let longer = [1, 3, 2, b'a', b'b', 0];
        // Key 1, a length of 1, then the same string.
        let shorter = [1, 1, 2, b'a', b'b'];
        for bytes in [&longer[..], &shorter[..]] {
            for skip in [false, true] {
                let decoded = decode_postcard_rows_except::<u64, String>(bytes, 1, sized, |_| skip);
                assert!(decoded.is_err(), "{bytes:?} read, skipping: {skip}");
            }
        }
        // A length past the payload's end.
        let past = [1, 0x80, 0x80, 0x40, b'a'];
        assert!(decode_postcard_rows::<u64, String>(&past, Some(1), sized).is_err());
    }

    #[test]
    fn counted_rows_must_be_exactly_the_payload() {
        for layout in LAYOUTS {
            let mut encoder = PostcardRows::<u64, String>::new("c", layout, 0);
            for k in 0..3 {
                encoder
                    .put(&k, &format!("value {k}"), RowMeta::default())
                    .unwrap();
            }
            let bytes = encoder.bytes();
            assert!(decode_postcard_rows::<u64, String>(bytes, Some(3), layout).is_ok());
            for wrong in [0, 2, 4, u64::MAX] {
                let decoded = decode_postcard_rows::<u64, String>(bytes, Some(wrong), layout);
                assert!(decoded.is_err(), "count {wrong} accepted, {layout:?}");
            }
        }
    }

    #[test]
    fn a_byte_vector_claiming_more_bytes_than_the_payload_fails_cleanly() {
        // One row: key 1, then a value claiming 2^20 bytes with three present.
        let bytes = [1, 0x80, 0x80, 0x40, 1, 2, 3];
        let unsized_rows = LAYOUTS[0];
        assert!(decode_postcard_rows::<u64, Vec<u8>>(&bytes, Some(1), unsized_rows).is_err());
        // The same in a version 1 payload, after its row count.
        let bytes = [1, 1, 0x80, 0x80, 0x40, 1, 2, 3];
        assert!(decode_postcard_rows::<u64, Vec<u8>>(&bytes, None, unsized_rows).is_err());
        // And sized, inside a value of the right length.
        let bytes = [1, 6, 0x80, 0x80, 0x40, 1, 2, 3];
        let sized = Layout::current(false, false);
        assert!(decode_postcard_rows::<u64, Vec<u8>>(&bytes, Some(1), sized).is_err());
    }

    #[test]
    fn a_huge_postcard_length_prefix_fails_cleanly() {
        // A varint claiming 2^62 entries followed by nothing.
        let bytes = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40];
        assert!(Codec::Postcard.decode::<(u64, u64)>(&bytes).is_err());
    }
}
