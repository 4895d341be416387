//! The graph file decoder, opened up for the fuzz target in `fuzz/` and the hostile-graph
//! tests: hidden from the docs, and not part of the stable API.
//!
//! Random bytes almost never pass the header's checksum, so [`graph_file_for`] wraps any
//! payload in a header that passes every check, so that the decoder gets the hostile bytes
//! themselves.

use super::Source;
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
