//! Fuzzes the dependency graph file decoder (`<manager dir>/.graph.deps`): the header checks
//! and the records behind them (cache fingerprints, tracked files and values, nodes and their
//! inputs), whose counts and lengths must never be trusted; and the graph journal's decoder
//! (`.graph.journal`): its header, the frames' lengths and checksums, the torn-tail rule, and
//! each frame's records and removed nodes.
//!
//! The first input byte chooses what the rest is. Bits 7 and 6 clear: a payload, wrapped in a
//! header that passes every check (random bytes almost never pass the checksum), so that the
//! record decoder gets the fuzzer's bytes; bit 7 alone: a whole graph file, decoded as it is.
//! Bit 6 set: the graph journal. With bit 7 too: a whole journal, as it is; with bit 5: one
//! frame body, sealed in a frame (length and checksum right) after a valid header; else
//! frames back to back after a valid header.
#![no_main]

use cacheman::__fuzz::{
    decode_graph, decode_graph_journal, graph_file_for, graph_frame_for, graph_journal_for,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match (mode & 0x80 != 0, mode & 0x40 != 0, mode & 0x20 != 0) {
        (false, false, _) => {
            let _ = decode_graph(&graph_file_for(rest));
        }
        (true, false, _) => {
            let _ = decode_graph(rest);
        }
        (true, true, _) => {
            let _ = decode_graph_journal(rest);
        }
        (false, true, true) => {
            let _ = decode_graph_journal(&graph_journal_for(&graph_frame_for(rest)));
        }
        (false, true, false) => {
            let _ = decode_graph_journal(&graph_journal_for(rest));
        }
    }
});
