//! Reading postcard rows: a payload of rows counted by itself (format version 1) or by the
//! header (version 2 and later), each row's key, value (its length in front from version 4),
//! insertion stamp and use count, as `Layout` says; a row the journal replaces can be left
//! out, its sized value stepped over.

use super::Layout;
use crate::shards::RowMeta;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, SeqAccess, Visitor};

/// Decodes a postcard payload: a sequence of rows, each read by `seed`, and nothing after.
pub(super) fn postcard_rows<'de, S>(bytes: &'de [u8], seed: S) -> Result<Vec<S::Value>, String>
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
pub(super) fn nothing_after<'de>(
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
        // In the row's order: the value, then its stamp and count.
        let (body, rest) = sized_body(bytes)?;
        let value = match skip {
            true => None,
            false => Some(sized_value::<V>(body)?),
        };
        let (meta, rest) = row_meta(rest, layout)?;
        return Ok((value, meta, rest));
    }
    let (value, rest) = postcard::take_from_bytes::<V>(bytes).map_err(|e| e.to_string())?;
    let (meta, rest) = row_meta(rest, layout)?;
    Ok((Some(value).filter(|_| !skip), meta, rest))
}

/// What follows a sized row's key at the front of `bytes`: its value's bytes (the length in
/// front of them checked against what is left, nothing decoded), its stamp and use count, and
/// the bytes after the row.
#[inline(always)]
pub(crate) fn sized_row_tail(
    bytes: &[u8],
    layout: Layout,
) -> Result<(&[u8], RowMeta, &[u8]), String> {
    let (body, rest) = sized_body(bytes)?;
    let (meta, rest) = row_meta(rest, layout)?;
    Ok((body, meta, rest))
}

/// A sized value's bytes at the front of `bytes` (after its length), and the bytes after it.
#[inline(always)]
fn sized_body(bytes: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (len, rest) = postcard::take_from_bytes::<u64>(bytes).map_err(|e| e.to_string())?;
    match usize::try_from(len).ok().and_then(|len| rest.get(..len)) {
        Some(body) => Ok((body, &rest[body.len()..])),
        None => Err(format!(
            "a value claims {len} bytes but {} are left",
            rest.len()
        )),
    }
}

/// Decodes a value that must take exactly `body` (a sized row's value bytes).
#[inline(always)]
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
#[inline(always)]
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
