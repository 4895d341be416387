//! The graph file, `<manager dir>/.graph.deps`: every node with its inputs, the tracked files
//! and values, and the function fingerprint of each cache. Written atomically under a lock of
//! its own and merged with what other processes wrote since, like a cache file.
//!
//! ```text
//! magic "CMGRAPH\0" | version u16 | payload length u64 | payload crc32 u32 | payload
//! payload: caches u32 × (id u64, fingerprint u64, name)
//!          files u32 × (key u64, length u64, modified ns u64, stamp u64, path)
//!          values u32 × (key u64, stamp u64, label)
//!          nodes u64 × (cache u64, key u64, stamp u64, state u8, inputs u32 × (source, key, seen))
//! ```
//! Integers are little-endian; names, paths and labels are a u32 length and UTF-8 bytes.
//! Nothing a file claims is trusted: counts are checked against the bytes left before anything
//! is reserved, and the checksum before anything is decoded.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::input::FileState;
use super::state::{HashMap, Node, NodeId, NodeState, State, TakeOff};
use super::{Input, Source};
use crate::Error;
use crate::store::{FileStamp, files};

const MAGIC: &[u8; 8] = b"CMGRAPH\0";
const VERSION: u16 = 1;
const HEADER_LEN: usize = 8 + 2 + 8 + 4;

/// What a graph file holds.
#[derive(Default)]
pub(super) struct Stored {
    pub(super) fingerprints: Vec<(u64, String, u64)>,
    pub(super) files: Vec<(u64, FileState)>,
    pub(super) values: Vec<(u64, String, u64)>,
    pub(super) nodes: Vec<(NodeId, Node)>,
}

impl Stored {
    /// Loads into an empty state.
    pub(super) fn into_state(self, state: &mut State) {
        for (id, name, fp) in self.fingerprints {
            state.recorded_fingerprints.insert(id, (name, fp));
        }
        state.files.extend(self.files);
        for (key, label, stamp) in self.values {
            state.values.insert(key, (label, stamp));
        }
        state.nodes.extend(self.nodes);
    }
}

fn state_byte(state: NodeState) -> u8 {
    match state {
        NodeState::Clean => 0,
        NodeState::Suspect => 1,
        NodeState::Dirty => 2,
    }
}

fn encode(state: &State) -> Vec<u8> {
    let mut out = Vec::new();
    let put_u64 = |out: &mut Vec<u8>, n: u64| out.extend_from_slice(&n.to_le_bytes());
    let put_str = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    let fingerprints = state.fingerprints();
    out.extend_from_slice(&(fingerprints.len() as u32).to_le_bytes());
    for (id, name, fp) in &fingerprints {
        put_u64(&mut out, *id);
        put_u64(&mut out, *fp);
        put_str(&mut out, name);
    }
    out.extend_from_slice(&(state.files.len() as u32).to_le_bytes());
    for (key, file) in &state.files {
        put_u64(&mut out, *key);
        put_u64(&mut out, file.len);
        put_u64(&mut out, file.modified_ns);
        put_u64(&mut out, file.stamp);
        put_str(&mut out, &file.path.to_string_lossy());
    }
    out.extend_from_slice(&(state.values.len() as u32).to_le_bytes());
    for (key, (label, stamp)) in &state.values {
        put_u64(&mut out, *key);
        put_u64(&mut out, *stamp);
        put_str(&mut out, label);
    }
    put_u64(&mut out, state.nodes.len() as u64);
    for (&(cache, key), node) in &state.nodes {
        put_u64(&mut out, cache);
        put_u64(&mut out, key);
        put_u64(&mut out, node.stamp);
        out.push(state_byte(node.state));
        out.extend_from_slice(&(node.inputs.len() as u32).to_le_bytes());
        for input in node.inputs.iter() {
            put_u64(&mut out, input.source);
            put_u64(&mut out, input.key);
            put_u64(&mut out, input.seen);
        }
    }
    seal(out)
}

/// A graph file: the header (magic, version, length, checksum), then `out`.
pub(super) fn seal(out: Vec<u8>) -> Vec<u8> {
    let mut file = Vec::with_capacity(HEADER_LEN + out.len());
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&VERSION.to_le_bytes());
    file.extend_from_slice(&(out.len() as u64).to_le_bytes());
    file.extend_from_slice(&crc32fast::hash(&out).to_le_bytes());
    file.extend_from_slice(&out);
    file
}

/// A bounds-checked reader over a payload.
struct Reader<'a> {
    bytes: &'a [u8],
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

    fn u64(&mut self) -> Result<u64, String> {
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
    fn count(&mut self, wide: bool, min_len: usize) -> Result<usize, String> {
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
}

fn decode(bytes: &[u8]) -> Result<Stored, String> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err("it is not a cacheman dependency graph (wrong magic or too short)".into());
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        return Err(format!(
            "it has format version {version}; this build reads {VERSION}"
        ));
    }
    let len = u64::from_le_bytes(bytes[10..18].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(bytes[18..22].try_into().unwrap_or_default());
    let payload = &bytes[HEADER_LEN..];
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
    let mut stored = Stored::default();
    for _ in 0..r.count(false, 20)? {
        let (id, fp) = (r.u64()?, r.u64()?);
        stored.fingerprints.push((id, r.string()?, fp));
    }
    for _ in 0..r.count(false, 36)? {
        let key = r.u64()?;
        let (len, modified_ns, stamp) = (r.u64()?, r.u64()?, r.u64()?);
        let path = PathBuf::from(r.string()?);
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
    for _ in 0..r.count(false, 20)? {
        let (key, stamp) = (r.u64()?, r.u64()?);
        stored.values.push((key, r.string()?, stamp));
    }
    for _ in 0..r.count(true, 29)? {
        let id = (r.u64()?, r.u64()?);
        let stamp = r.u64()?;
        let state = match r.u8()? {
            0 => NodeState::Clean,
            1 => NodeState::Suspect,
            2 => NodeState::Dirty,
            other => return Err(format!("a node has an unknown state {other}")),
        };
        let mut inputs = Vec::with_capacity(r.count(false, 24)?);
        for _ in 0..inputs.capacity() {
            inputs.push(Input {
                source: r.u64()?,
                key: r.u64()?,
                seen: r.u64()?,
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
    if !r.bytes.is_empty() {
        return Err(format!("{} bytes follow the last node", r.bytes.len()));
    }
    Ok(stored)
}

/// Decodes a graph file: how many nodes it holds, or why it is refused.
pub(super) fn decode_nodes(bytes: &[u8]) -> Result<usize, String> {
    decode(bytes).map(|stored| stored.nodes.len())
}

/// Reads the graph file; `Ok(None)` when there is none.
pub(super) fn read(path: &Path) -> Result<Option<Stored>, String> {
    match std::fs::read(path) {
        Ok(bytes) => decode(&bytes).map(Some),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!("it could not be read: {err}")),
    }
}

/// Removes the graph file if it is still unreadable once locked (another process may have
/// written a good one since it was read).
pub(super) fn remove_if_unreadable(path: &Path) -> std::io::Result<()> {
    let _lock = files::lock_beside(path)?;
    if read(path).is_err() {
        match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
    }
    Ok(())
}

/// Merges what other processes wrote into `state` (their nodes win unless this process
/// changed the same node since its last sync), writes the result, and returns the entries of
/// this process's caches that the merge found invalidated elsewhere, with the stamp of the file
/// as written (taken under the lock, so it is ours).
pub(super) fn save(
    path: &Path,
    manager: &str,
    state: &Mutex<State>,
) -> Result<(TakeOff, Option<FileStamp>), Error> {
    let io_error = |action: &'static str, source: std::io::Error| Error::Io {
        cache: format!("(dependency graph of manager `{manager}`)"),
        action,
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        files::create_private_dir(dir).map_err(|e| io_error("create the cache directory", e))?;
    }
    let lock = files::lock_beside(path).map_err(|e| io_error("lock the graph file", e))?;
    // What a save killed half-way left behind.
    files::remove_orphan_temps(path, &lock);
    let theirs = match read(path) {
        Ok(stored) => stored.unwrap_or_default(),
        Err(reason) => {
            log::warn!(
                "cacheman: the dependency graph {} of manager `{manager}` is unreadable \
                 ({reason}); it is replaced by this process's",
                path.display()
            );
            Stored::default()
        }
    };
    let mut take_off = TakeOff::default();
    let bytes = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        merge(&mut state, theirs, &mut take_off);
        let bytes = encode(&state);
        state.changed.clear();
        state.fingerprints_changed = false;
        bytes
    };
    files::atomic_write(path, &[&bytes], None).map_err(|e| io_error("write the graph file", e))?;
    Ok((take_off, stamp(path)))
}

/// The graph file's stamp now, if it exists.
pub(super) fn stamp(path: &Path) -> Option<FileStamp> {
    std::fs::metadata(path).ok().map(|m| FileStamp::of(&m))
}

fn merge(state: &mut State, theirs: Stored, take_off: &mut TakeOff) {
    for (id, name, fp) in theirs.fingerprints {
        state.recorded_fingerprints.entry(id).or_insert((name, fp));
    }
    for (key, file) in theirs.files {
        if !state.changed.contains(&(Source::FILES, key)) {
            state.files.insert(key, file);
        }
    }
    for (key, label, stamp) in theirs.values {
        if !state.changed.contains(&(Source::VALUES, key)) {
            state.values.insert(key, (label, stamp));
        }
    }
    let mut adopted = false;
    let mut invalidated: HashMap<NodeId, NodeState> = HashMap::default();
    for (id, node) in theirs.nodes {
        if state.changed.contains(&id) {
            continue;
        }
        match state.nodes.get(&id) {
            Some(ours) if *ours == node => {}
            ours => {
                // Another process recomputed or invalidated this entry since we last synced.
                if ours.is_some_and(|o| o.stamp != node.stamp) || node.state == NodeState::Dirty {
                    invalidated.insert(id, NodeState::Dirty);
                } else if node.state == NodeState::Suspect {
                    invalidated.insert(id, NodeState::Suspect);
                }
                state.nodes.insert(id, node);
                adopted = true;
            }
        }
    }
    if adopted {
        state.rebuild_readers();
    }
    for (id, how) in invalidated {
        match how {
            NodeState::Dirty => {
                // As an invalidation here: a computation of it running now is not recorded.
                state.note_dirtied(id);
                take_off.dirty(id);
            }
            _ => take_off.suspect(id),
        }
        state.spread(id, take_off);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_graph_files_are_refused_not_trusted() {
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
        let good = encode(&state);
        let stored = decode(&good).unwrap();
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
        // A huge count with a matching checksum is refused before anything is reserved.
        let mut payload = Vec::new();
        payload.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut lying = Vec::new();
        lying.extend_from_slice(MAGIC);
        lying.extend_from_slice(&VERSION.to_le_bytes());
        lying.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        lying.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        lying.extend_from_slice(&payload);
        let err = decode(&lying).err().unwrap();
        assert!(err.contains("counts"), "{err}");
    }
}
