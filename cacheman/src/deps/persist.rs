//! The graph's snapshot, `<manager dir>/.graph.deps`: every node with its inputs, the tracked
//! files and values, and the function fingerprint of each cache, as of the generation of the
//! journal that continues it (`journal.rs`; the save protocol is in `sync.rs`).
//!
//! ```text
//! version 2: magic "CMGRAPH\0" | version u16 | generation u64 | payload length u64
//!            | payload crc32 u32 | header crc32 u32                              (34 bytes)
//! version 1: magic "CMGRAPH\0" | version u16 | payload length u64 | payload crc32 u32
//!            (22 bytes; still read, as generation 0, which no journal continues)
//! payload: caches u32 × (id u64, fingerprint u64, name)
//!          files u32 × (key u64, length u64, modified ns u64, stamp u64, path)
//!          values u32 × (key u64, stamp u64, label)
//!          nodes u64 × (cache u64, key u64, stamp u64, state u8, inputs u32 × (source, key, seen))
//! ```
//! Integers are little-endian; names, paths and labels are a u32 length and UTF-8 bytes.
//! Nothing a file claims is trusted: counts are checked against the bytes left before anything
//! is reserved, and the checksums before anything is decoded.

use std::path::{Path, PathBuf};

use super::Input;
use super::input::FileState;
use super::state::{Node, NodeId, NodeState, State};
use crate::store::FileStamp;

const MAGIC: &[u8; 8] = b"CMGRAPH\0";
/// The layout this build writes; version 1 (no generation, no header checksum) is read too.
const VERSION: u16 = 2;
const V1_HEADER_LEN: usize = 8 + 2 + 8 + 4;
const HEADER_LEN: usize = 8 + 2 + 8 + 8 + 4 + 4;

/// What a graph snapshot holds (or, decoded from a journal frame, what one save changed).
#[derive(Debug, Default)]
pub(super) struct Stored {
    /// The generation of the journal that continues the snapshot (0: a version 1 file, which
    /// none does).
    pub(super) generation: u64,
    pub(super) fingerprints: Vec<(u64, String, u64)>,
    pub(super) files: Vec<(u64, FileState)>,
    pub(super) values: Vec<(u64, String, u64)>,
    pub(super) nodes: Vec<(NodeId, Node)>,
}

/// The little-endian integer at `at` (0 past the end: callers check lengths first).
pub(super) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

pub(super) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn state_byte(state: NodeState) -> u8 {
    match state {
        NodeState::Clean => 0,
        NodeState::Suspect => 1,
        NodeState::Dirty => 2,
    }
}

pub(super) fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Writes the four lists of a payload: a snapshot's whole, or a journal frame's changed part.
pub(super) fn put_records<'a>(
    out: &mut Vec<u8>,
    fingerprints: &[(u64, String, u64)],
    files: impl ExactSizeIterator<Item = (u64, &'a FileState)>,
    values: impl ExactSizeIterator<Item = (u64, &'a (String, u64))>,
    nodes: impl ExactSizeIterator<Item = (NodeId, &'a Node)>,
) {
    out.extend_from_slice(&(fingerprints.len() as u32).to_le_bytes());
    for (id, name, fp) in fingerprints {
        put_u64(out, *id);
        put_u64(out, *fp);
        put_str(out, name);
    }
    out.extend_from_slice(&(files.len() as u32).to_le_bytes());
    for (key, file) in files {
        put_u64(out, key);
        put_u64(out, file.len);
        put_u64(out, file.modified_ns);
        put_u64(out, file.stamp);
        put_str(out, &file.path.to_string_lossy());
    }
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for (key, (label, stamp)) in values {
        put_u64(out, key);
        put_u64(out, *stamp);
        put_str(out, label);
    }
    put_u64(out, nodes.len() as u64);
    for ((cache, key), node) in nodes {
        put_u64(out, cache);
        put_u64(out, key);
        put_u64(out, node.stamp);
        out.push(state_byte(node.state));
        out.extend_from_slice(&(node.inputs.len() as u32).to_le_bytes());
        for input in node.inputs.iter() {
            put_u64(out, input.source);
            put_u64(out, input.key);
            put_u64(out, input.seen);
        }
    }
}

/// The whole state as a snapshot continued by the journal of `generation`.
pub(super) fn encode(state: &State, generation: u64) -> Vec<u8> {
    let mut out = Vec::new();
    put_records(
        &mut out,
        &state.fingerprints(),
        state.files.iter().map(|(k, f)| (*k, f)),
        state.values.iter().map(|(k, v)| (*k, v)),
        state.nodes.iter().map(|(id, n)| (*id, n)),
    );
    seal(out, generation)
}

/// A graph file: the header (magic, version, generation, length, checksums), then `out`.
pub(super) fn seal(out: Vec<u8>, generation: u64) -> Vec<u8> {
    let mut file = Vec::with_capacity(HEADER_LEN + out.len());
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&VERSION.to_le_bytes());
    put_u64(&mut file, generation);
    put_u64(&mut file, out.len() as u64);
    file.extend_from_slice(&crc32fast::hash(&out).to_le_bytes());
    let crc = crc32fast::hash(&file);
    file.extend_from_slice(&crc.to_le_bytes());
    file.extend_from_slice(&out);
    file
}

/// A bounds-checked reader over a payload.
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err("the payload ends in the middle of a record".into());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }

    pub(super) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }

    fn string(&mut self) -> Result<String, String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| "a name is not UTF-8".into())
    }

    /// A count of records of at least `min_len` bytes each, refused if the bytes left cannot
    /// hold that many.
    pub(super) fn count(&mut self, wide: bool, min_len: usize) -> Result<usize, String> {
        let count = if wide {
            self.u64()?
        } else {
            u64::from(self.u32()?)
        };
        if count > (self.bytes.len() / min_len) as u64 {
            return Err(format!(
                "it counts {count} records but only {} bytes are left",
                self.bytes.len()
            ));
        }
        Ok(count as usize)
    }

    /// The four lists [`put_records`] writes.
    pub(super) fn records(&mut self) -> Result<Stored, String> {
        let mut stored = Stored::default();
        for _ in 0..self.count(false, 20)? {
            let (id, fp) = (self.u64()?, self.u64()?);
            stored.fingerprints.push((id, self.string()?, fp));
        }
        for _ in 0..self.count(false, 36)? {
            let key = self.u64()?;
            let (len, modified_ns, stamp) = (self.u64()?, self.u64()?, self.u64()?);
            let path = PathBuf::from(self.string()?);
            stored.files.push((
                key,
                FileState {
                    path,
                    len,
                    modified_ns,
                    stamp,
                },
            ));
        }
        for _ in 0..self.count(false, 20)? {
            let (key, stamp) = (self.u64()?, self.u64()?);
            stored.values.push((key, self.string()?, stamp));
        }
        for _ in 0..self.count(true, 29)? {
            let id = (self.u64()?, self.u64()?);
            let stamp = self.u64()?;
            let state = match self.u8()? {
                0 => NodeState::Clean,
                1 => NodeState::Suspect,
                2 => NodeState::Dirty,
                other => return Err(format!("a node has an unknown state {other}")),
            };
            let mut inputs = Vec::with_capacity(self.count(false, 24)?);
            for _ in 0..inputs.capacity() {
                inputs.push(Input {
                    source: self.u64()?,
                    key: self.u64()?,
                    seen: self.u64()?,
                });
            }
            stored.nodes.push((
                id,
                Node {
                    stamp,
                    state,
                    inputs: inputs.into_boxed_slice(),
                },
            ));
        }
        Ok(stored)
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Stored, String> {
    if bytes.len() < V1_HEADER_LEN || &bytes[..8] != MAGIC {
        return Err("it is not a cacheman dependency graph (wrong magic or too short)".into());
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    let (generation, len, crc, payload) = match version {
        1 => (
            0,
            u64_at(bytes, 10),
            u32_at(bytes, 18),
            &bytes[V1_HEADER_LEN..],
        ),
        VERSION if bytes.len() < HEADER_LEN => {
            return Err(format!(
                "{} bytes is shorter than its {HEADER_LEN}-byte header",
                bytes.len()
            ));
        }
        VERSION => {
            if crc32fast::hash(&bytes[..HEADER_LEN - 4]) != u32_at(bytes, HEADER_LEN - 4) {
                return Err("the header's checksum does not match".into());
            }
            let generation = u64_at(bytes, 10);
            (
                generation,
                u64_at(bytes, 18),
                u32_at(bytes, 26),
                &bytes[HEADER_LEN..],
            )
        }
        _ => {
            return Err(format!(
                "it has format version {version}; this build reads 1 and {VERSION}"
            ));
        }
    };
    if payload.len() as u64 != len {
        return Err(format!(
            "the header claims {len} payload bytes but the file holds {}",
            payload.len()
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err("the payload's checksum does not match".into());
    }
    let mut r = Reader { bytes: payload };
    let mut stored = r.records()?;
    if !r.bytes.is_empty() {
        return Err(format!("{} bytes follow the last node", r.bytes.len()));
    }
    stored.generation = generation;
    Ok(stored)
}

/// Decodes a graph file: how many nodes it holds, or why it is refused.
pub(super) fn decode_nodes(bytes: &[u8]) -> Result<usize, String> {
    decode(bytes).map(|stored| stored.nodes.len())
}

/// Reads the graph snapshot; `Ok(None)` when there is none.
pub(super) fn read(path: &Path) -> Result<Option<(Stored, u64)>, String> {
    match std::fs::read(path) {
        Ok(bytes) => decode(&bytes).map(|stored| Some((stored, bytes.len() as u64))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!("it could not be read: {err}")),
    }
}

/// The graph file's stamp now, if it exists.
pub(super) fn stamp(path: &Path) -> Option<FileStamp> {
    std::fs::metadata(path).ok().map(|m| FileStamp::of(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_node_state() -> State {
        let mut state = State::default();
        state.nodes.insert(
            (5, 6),
            Node {
                stamp: 7,
                state: NodeState::Suspect,
                inputs: vec![Input {
                    source: 9,
                    key: 10,
                    seen: 11,
                }]
                .into_boxed_slice(),
            },
        );
        state
    }

    #[test]
    fn hostile_graph_files_are_refused_not_trusted() {
        let good = encode(&one_node_state(), 3);
        let stored = decode(&good).unwrap();
        assert_eq!(stored.generation, 3);
        assert_eq!(stored.nodes.len(), 1);
        assert_eq!(stored.nodes[0].1.inputs[0].seen, 11);
        // Every truncation and every flipped byte is an error, never a panic.
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at {at}");
        }
        // A huge count with matching checksums is refused before anything is reserved.
        let lying = seal(u32::MAX.to_le_bytes().to_vec(), 1);
        let err = decode(&lying).err().unwrap();
        assert!(err.contains("counts"), "{err}");
    }

    #[test]
    fn version_1_files_still_load_as_generation_0() {
        // A version 1 file as builds before the graph's journal wrote it.
        let version_2 = encode(&one_node_state(), 9);
        let payload = &version_2[HEADER_LEN..];
        let mut version_1 = MAGIC.to_vec();
        version_1.extend_from_slice(&1u16.to_le_bytes());
        put_u64(&mut version_1, payload.len() as u64);
        version_1.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        version_1.extend_from_slice(payload);
        let stored = decode(&version_1).unwrap();
        assert_eq!(stored.generation, 0);
        assert_eq!(stored.nodes[0].0, (5, 6));
        assert_eq!(stored.nodes[0].1.state, NodeState::Suspect);
        let mut other = version_1.clone();
        other[8] = 3;
        assert!(decode(&other).unwrap_err().contains("version 3"));
    }
}
