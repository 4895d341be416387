//! The graph's journal, `<manager dir>/.graph.journal`: each save of the graph appends one
//! checked frame of what this process changed since it last synced (nodes, removed nodes,
//! tracked files and values, function fingerprints) instead of rewriting the snapshot;
//! loading replays the frames after the snapshot; a compaction writes a new snapshot and
//! starts over (`sync.rs`).
//!
//! ```text
//! header: magic "CMGRAPHJ" | version u16 | generation u64 | header crc32 u32   (22 bytes)
//! frame:  body length u32 | body crc32 u32 | body        (the cache journal's framing)
//! body:   kind u8 (1: changes) | records as in a snapshot's payload (fingerprints, files,
//!         values, nodes: those this save changed) | removed u64 × (cache u64, key u64)
//! ```
//! Little-endian. A journal continues the snapshot whose header carries its generation; one of
//! another generation is what a crash left between a compaction's rename and its removal of
//! the old journal (whose frames that snapshot holds), and is ignored. Frames are split, and a
//! torn last frame told from damage, by `store::journal::scan`, the rule the cache journal
//! follows.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::Source;
use super::input::FileState;
use super::persist::{self, Reader, Stored, put_u64, u32_at, u64_at};
use super::state::{HashMap, HashSet, Node, NodeId, State};
use crate::store::journal::{self as framing, FRAME_HEAD};

/// The journal's name in a manager's directory, beside [`GRAPH_FILE`](super::GRAPH_FILE).
pub(crate) const JOURNAL_FILE: &str = ".graph.journal";
const MAGIC: &[u8; 8] = b"CMGRAPHJ";
const VERSION: u16 = 1;
/// Size of the journal's header in bytes.
pub(super) const HEADER_LEN: u64 = 8 + 2 + 8 + 4;
/// The one kind of frame: the changes of one save.
const KIND_CHANGES: u8 = 1;

/// The header of a journal continuing the snapshot of `generation`.
pub(super) fn header(generation: u64) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    put_u64(&mut out, generation);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The generation in a journal's header, or why the header is refused.
pub(super) fn decode_header(bytes: &[u8]) -> Result<u64, String> {
    let len = HEADER_LEN as usize;
    if bytes.len() < len {
        return Err(format!(
            "{} bytes is shorter than the {len}-byte journal header",
            bytes.len()
        ));
    }
    if &bytes[..8] != MAGIC {
        return Err("it does not start with the graph journal's magic bytes".into());
    }
    if crc32fast::hash(&bytes[..len - 4]) != u32_at(bytes, len - 4) {
        return Err("the journal header's checksum does not match".into());
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        return Err(format!(
            "journal version {version} (this build reads version {VERSION})"
        ));
    }
    Ok(u64_at(bytes, 10))
}

/// What frames record, folded in order (a later frame's record of a node, file, value or
/// fingerprint replaces an earlier one's).
#[derive(Debug, Default)]
pub(super) struct Folded {
    pub(super) fingerprints: HashMap<u64, (String, u64)>,
    pub(super) files: HashMap<u64, FileState>,
    pub(super) values: HashMap<u64, (String, u64)>,
    /// `None`: removed.
    pub(super) nodes: HashMap<NodeId, Option<Node>>,
}

impl Folded {
    /// A snapshot's contents, for frames to be folded on top.
    pub(super) fn of_snapshot(stored: Stored) -> Self {
        let mut folded = Folded::default();
        folded.fold(stored, Vec::new());
        folded
    }

    fn fold(&mut self, stored: Stored, removed: Vec<NodeId>) {
        for (id, name, fp) in stored.fingerprints {
            self.fingerprints.insert(id, (name, fp));
        }
        self.files.extend(stored.files);
        for (key, label, stamp) in stored.values {
            self.values.insert(key, (label, stamp));
        }
        for (id, node) in stored.nodes {
            self.nodes.insert(id, Some(node));
        }
        for id in removed {
            self.nodes.insert(id, None);
        }
    }

    /// Folds a frame's body on top.
    pub(super) fn fold_body(&mut self, body: &[u8]) -> Result<(), String> {
        let (stored, removed) = decode_body(body)?;
        self.fold(stored, removed);
        Ok(())
    }

    /// Folds `later` (frames after these) on top.
    pub(super) fn fold_folded(&mut self, later: Folded) {
        self.fingerprints.extend(later.fingerprints);
        self.files.extend(later.files);
        self.values.extend(later.values);
        self.nodes.extend(later.nodes);
    }

    /// Loads a snapshot and these frames (its journal, replayed) into an empty state; the
    /// snapshot's nodes go straight into the state's map.
    pub(super) fn load_into(self, snapshot: Stored, state: &mut State) {
        for (id, name, fp) in snapshot.fingerprints {
            state.recorded_fingerprints.insert(id, (name, fp));
        }
        state.files.extend(snapshot.files);
        for (key, label, stamp) in snapshot.values {
            state.values.insert(key, (label, stamp));
        }
        state.nodes.extend(snapshot.nodes);
        state.recorded_fingerprints.extend(self.fingerprints);
        state.files.extend(self.files);
        state.values.extend(self.values);
        for (id, node) in self.nodes {
            match node {
                Some(node) => state.nodes.insert(id, node),
                None => state.nodes.remove(&id),
            };
        }
    }
}

/// A whole frame (head and body) of what `changed` names in `state` (nodes, files, values;
/// a node it names that `state` no longer has is recorded as removed), and of every function
/// fingerprint when `fingerprints` is set. `None` when that is nothing.
pub(super) fn encode_frame(
    state: &State,
    changed: &HashSet<NodeId>,
    fingerprints: bool,
) -> Option<Vec<u8>> {
    if changed.is_empty() && !fingerprints {
        return None;
    }
    let (mut files, mut values, mut nodes, mut removed) = (vec![], vec![], vec![], vec![]);
    for &id in changed {
        match id.0 {
            Source::FILES => files.extend(state.files.get(&id.1).map(|f| (id.1, f))),
            Source::VALUES => values.extend(state.values.get(&id.1).map(|v| (id.1, v))),
            _ => match state.nodes.get(&id) {
                Some(node) => nodes.push((id, node)),
                None => removed.push(id),
            },
        }
    }
    let fingerprints = match fingerprints {
        true => state.fingerprints(),
        false => Vec::new(),
    };
    let mut frame = vec![0; FRAME_HEAD];
    frame.push(KIND_CHANGES);
    persist::put_records(
        &mut frame,
        &fingerprints,
        files.into_iter(),
        values.into_iter(),
        nodes.into_iter(),
    );
    put_u64(&mut frame, removed.len() as u64);
    for (cache, key) in removed {
        put_u64(&mut frame, cache);
        put_u64(&mut frame, key);
    }
    // A graph's changes past 4 GiB in one save: written as a snapshot instead.
    framing::seal_frame(&mut frame).ok()?;
    Some(frame)
}

/// Decodes one frame's body: the records it holds and the nodes it removes. Every count is
/// checked against the bytes left before anything is reserved.
pub(super) fn decode_body(body: &[u8]) -> Result<(Stored, Vec<NodeId>), String> {
    let Some((&kind, rest)) = body.split_first() else {
        return Err("an empty frame".into());
    };
    if kind != KIND_CHANGES {
        return Err(format!("unknown frame kind {kind}"));
    }
    let mut r = Reader { bytes: rest };
    let stored = r.records()?;
    let mut removed = Vec::with_capacity(r.count(true, 16)?);
    for _ in 0..removed.capacity() {
        removed.push((r.u64()?, r.u64()?));
    }
    if !r.bytes.is_empty() {
        return Err(format!(
            "{} bytes follow the frame's last record",
            r.bytes.len()
        ));
    }
    Ok((stored, removed))
}

/// The frames of a journal from some offset on.
#[derive(Debug)]
pub(super) struct Tail {
    /// How many whole frames were read.
    pub(super) frames: usize,
    /// The offset (from the file's start) of the end of the last whole frame.
    pub(super) end: u64,
    /// What was wrong with a torn last frame, which is dropped.
    pub(super) torn: Option<String>,
}

/// The journal beside the snapshot at `snapshot`.
pub(super) fn path_beside(snapshot: &Path) -> PathBuf {
    snapshot.with_file_name(JOURNAL_FILE)
}

/// Reads the journal at `path` from `from` on (from its first frame if `from` is before it)
/// and folds its frames on top of `folded`. `Ok(None)`: there is none, or it continues
/// another snapshot than the one of `generation`; `Err`: its header or a frame before the
/// last is damaged, or it cannot be read.
pub(super) fn read(
    path: &Path,
    generation: u64,
    from: u64,
    folded: &mut Folded,
) -> Result<Option<Tail>, String> {
    let read = framing::read_after(path, HEADER_LEN, from)
        .map_err(|err| format!("it could not be read: {err}"))?;
    let Some((head, bytes, start)) = read else {
        return Ok(None);
    };
    if decode_header(&head)? != generation {
        return Ok(None);
    }
    fold_frames(&bytes, start, folded).map(Some)
}

/// Folds `bytes`, frames back to back that start at byte `start` of their journal, on top of
/// `folded`: the whole frames, a torn last one dropped; `Err`: damage before the last frame.
pub(super) fn fold_frames(bytes: &[u8], start: u64, folded: &mut Folded) -> Result<Tail, String> {
    let scan = framing::scan(bytes).map_err(|e| format!("{e} (counted from byte {start})"))?;
    for (at, body) in scan.bodies.iter().enumerate() {
        folded
            .fold_body(body)
            .map_err(|e| format!("frame {} after byte {start}: {e}", at + 1))?;
    }
    Ok(Tail {
        frames: scan.bodies.len(),
        end: start + scan.end as u64,
        torn: scan.torn,
    })
}

/// The generation in the header of the journal at `path`, if it has a readable one.
pub(super) fn generation_at(path: &Path) -> Option<u64> {
    let mut head = [0u8; HEADER_LEN as usize];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    decode_header(&head).ok()
}

#[cfg(test)]
mod tests;
