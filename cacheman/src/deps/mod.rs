//! Per-entry dependencies: what each cached entry read while it was computed, kept beside the
//! caches of a manager, persisted, and followed when something changes.
//!
//! The model (see docs/ARCHITECTURE.md, "Per-entry dependencies"):
//!
//! - While a miss computes an entry, a **frame** is open on the computing thread (or carried by
//!   the computing future). Every read of an entry of a cache of the same manager, every
//!   [`track_file`](crate::track_file) and [`track_value`](crate::track_value), is an
//!   [`Input`] of that frame: where it came from (cache and key hash, file, or label) and the
//!   **stamp** it had: a hash of the value's encoding for persistent caches, a fresh number for
//!   memory caches, a fingerprint of size, modification time and contents for files.
//! - The finished frame becomes the entry's [`Node`] in the manager's [`EntryGraph`], with the
//!   entry's own stamp. Nodes and their inputs are saved to `<manager dir>/.graph.deps` and
//!   the journal of saves beside it, `.graph.journal`.
//! - A change (an invalidated entry, a changed file, a new function body, an insert of another
//!   value) marks the changed node **dirty** and, following the reverse edges, every node that
//!   read it **suspect**. Their values leave the hit path at once (hits never check anything);
//!   a suspect entry is kept aside and served again without running its body if its inputs
//!   turn out unchanged (early cutoff), a dirty one is recomputed.

mod declared;
mod explain;
mod frame;
pub(crate) mod fuzz;
mod graph;
mod input;
mod journal;
mod manifest;
mod merge;
mod persist;
mod state;
mod summary;
mod sync;
mod tracked;

pub(crate) use declared::DependencyGraph;
pub use explain::{Explanation, InputReport, InputSource, Staleness};
pub(crate) use frame::{Frame, Recording, record, recording};
pub(crate) use graph::{CacheLink, EntryGraph, Holder, Verdict};
pub(crate) use input::{Input, Source};
pub use input::{track_file, track_value};
pub(crate) use manifest::read as read_manifest;
pub use manifest::{Manifest, ManifestCache};
pub(crate) use state::{HashMap, HashSet, NodeState, TakeOff};
pub(crate) use summary::summarize as summarize_graph;
pub use summary::{GraphSummary, RecordedEdge};

pub(crate) use crate::stable_hash::{StableHasher, stable_hash};

/// The graph file's name in a manager's directory (no cache can be named so: cache names
/// cannot start with `.`).
pub(crate) const GRAPH_FILE: &str = ".graph.deps";
/// The manifest's name in a manager's directory.
pub(crate) const MANIFEST_FILE: &str = ".manifest.json";

/// The stable id of a cache name in its manager's graph; never one of the reserved sources
/// ([`Source::FILES`], [`Source::VALUES`]).
pub(crate) fn cache_id(name: &str) -> u64 {
    stable_hash(name).max(Source::FIRST_CACHE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hashes_do_not_change_between_builds() {
        // Persisted in graph files: a change here orphans every recorded edge.
        assert_eq!(stable_hash(&42u64), stable_hash(&42u64));
        assert_eq!(stable_hash("raw_docs"), cache_id("raw_docs"));
        assert_ne!(stable_hash(&(1u8, 2u8)), stable_hash(&(2u8, 1u8)));
        assert_eq!(stable_hash(&7usize), stable_hash(&7u64));
    }
}
