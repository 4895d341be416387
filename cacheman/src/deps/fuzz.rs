//! The graph file and graph journal decoders, opened up for the fuzz target in `fuzz/` and
//! the hostile-graph tests: hidden from the docs, and not part of the stable API.
//!
//! Random bytes almost never pass the header's checksum, so [`graph_file_for`] wraps any
//! payload in a header that passes every check, so that the decoder gets the hostile bytes
//! themselves; [`graph_journal_for`] and [`graph_frame_for`] do the same for journals.

use super::Source;
use super::journal::{self, Folded};
use super::persist;

/// A whole graph file (magic, version, length and checksum right) around `payload`.
pub fn graph_file_for(payload: &[u8]) -> Vec<u8> {
    persist::seal(payload.to_vec(), 1)
}

/// Decodes `file` as a graph file, exactly as loading it from disk would: the number of
/// nodes, or the error's message.
pub fn decode_graph(file: &[u8]) -> Result<usize, String> {
    persist::decode_nodes(file)
}

/// The payload of a valid graph of `nodes` nodes of one cache, each reading the one before it
/// (and the first a tracked value), for building valid files. Written field by field (the
/// layout is in `persist.rs`) so that the bytes do not depend on a map's order.
pub fn graph_payload_for(nodes: u64) -> Vec<u8> {
    let cache = super::cache_id("fuzzed");
    let mut out = Vec::new();
    let put_u64 = |out: &mut Vec<u8>, n: u64| out.extend_from_slice(&n.to_le_bytes());
    let put_str = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    out.extend_from_slice(&1u32.to_le_bytes()); // caches
    put_u64(&mut out, cache);
    put_u64(&mut out, 0xf00d);
    put_str(&mut out, "fuzzed");
    out.extend_from_slice(&0u32.to_le_bytes()); // files
    out.extend_from_slice(&1u32.to_le_bytes()); // values
    put_u64(&mut out, 1);
    put_u64(&mut out, 0x5eed);
    put_str(&mut out, "config");
    put_u64(&mut out, nodes);
    for key in 0..nodes {
        let input = match key {
            0 => [Source::VALUES, 1, 0x5eed],
            _ => [cache, key - 1, key - 1],
        };
        for n in [cache, key, key] {
            put_u64(&mut out, n);
        }
        out.push(0); // clean
        out.extend_from_slice(&1u32.to_le_bytes());
        for n in input {
            put_u64(&mut out, n);
        }
    }
    out
}

/// A whole graph journal (a header of generation 1 that passes every check) before `frames`.
pub fn graph_journal_for(frames: &[u8]) -> Vec<u8> {
    let mut file = journal::header(1);
    file.extend_from_slice(frames);
    file
}

/// A frame (length and checksum right) around `body`; `body` whole if it is too long for one.
pub fn graph_frame_for(body: &[u8]) -> Vec<u8> {
    let mut frame = vec![0; crate::store::journal::FRAME_HEAD];
    frame.extend_from_slice(body);
    match crate::store::journal::seal_frame(&mut frame) {
        Ok(()) => frame,
        Err(_) => body.to_vec(),
    }
}

/// The body of a valid frame: the records of [`graph_payload_for`]`(nodes)` and one removed
/// node.
pub fn graph_frame_body_for(nodes: u64) -> Vec<u8> {
    let mut body = vec![1]; // a frame of changes
    body.extend_from_slice(&graph_payload_for(nodes));
    persist::put_u64(&mut body, 1);
    persist::put_u64(&mut body, super::cache_id("fuzzed"));
    persist::put_u64(&mut body, u64::MAX);
    body
}

/// Decodes `file` as a whole graph journal, exactly as loading it replays one (a torn last
/// frame dropped): the nodes its whole frames name (recorded or removed), or the error's
/// message.
pub fn decode_graph_journal(file: &[u8]) -> Result<usize, String> {
    journal::decode_header(file)?;
    let frames = file.get(journal::HEADER_LEN as usize..).unwrap_or(&[]);
    let mut folded = Folded::default();
    journal::fold_frames(frames, journal::HEADER_LEN, &mut folded)?;
    Ok(folded.nodes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_graph_journals_decode_and_damage_is_caught() {
        let mut frames = graph_frame_for(&graph_frame_body_for(2));
        frames.extend(graph_frame_for(&graph_frame_body_for(3)));
        // Nodes 0..3 of the cache, and the one removed.
        assert_eq!(decode_graph_journal(&graph_journal_for(&frames)), Ok(4));
        let mut damaged = graph_journal_for(&frames);
        damaged[journal::HEADER_LEN as usize + 12] ^= 1;
        assert!(decode_graph_journal(&damaged).is_err());
        assert!(decode_graph_journal(&frames).is_err(), "no header");
    }
}
