//! Fuzzes the dependency graph file decoder (`<manager dir>/.graph.deps`): the header checks
//! and the records behind them (cache fingerprints, tracked files and values, nodes and their
//! inputs), whose counts and lengths must never be trusted.
//!
//! The first input byte chooses what the rest is. Bit 7 set: the rest is a whole file, decoded
//! as it is. Bit 7 clear: the rest is a payload, wrapped in a header that passes every check
//! (random bytes almost never pass the checksum), so that the record decoder gets the
//! fuzzer's bytes.
#![no_main]

use cacheman::__fuzz::{decode_graph, graph_file_for};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 0x80 != 0 {
        let _ = decode_graph(rest);
    } else {
        let _ = decode_graph(&graph_file_for(rest));
    }
});
