//! What a graph file holds, counted for people and tools: entries per cache and recorded edges
//! between caches. Read by [`inspect`](crate::inspect) without the program that wrote it.

use std::collections::BTreeMap;
use std::path::Path;

use super::Source;

/// The per-entry dependencies recorded in a manager's graph file, counted.
///
/// ```
/// let summary = cacheman::inspect::GraphSummary::default();
/// assert_eq!(summary.entries, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct GraphSummary {
    /// Entries with a record (they read something, or something read them).
    pub entries: u64,
    /// Recorded entries per cache name.
    pub entries_per_cache: BTreeMap<String, u64>,
    /// Entries waiting to be recomputed (invalidated) or checked (something they read changed).
    pub stale_entries: u64,
    /// Recorded reads between caches, counted, in name order.
    pub edges: Vec<RecordedEdge>,
    /// Reads of tracked files, by the reader's cache.
    pub file_reads: BTreeMap<String, u64>,
    /// Reads of tracked values, by the reader's cache.
    pub value_reads: BTreeMap<String, u64>,
    /// Files tracked.
    pub tracked_files: Vec<String>,
}

/// Entries of cache `to` that read entries of cache `from`, counted.
///
/// ```
/// let edge = cacheman::inspect::RecordedEdge::default();
/// assert_eq!(edge.reads, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RecordedEdge {
    /// The cache read from.
    pub from: String,
    /// The cache of the entries that read it.
    pub to: String,
    /// How many reads are recorded (one per reading entry and entry read).
    pub reads: u64,
}

/// Counts what the graph file at `path` holds. `Ok(None)`: there is none; `Err`: it cannot be
/// read or is damaged (the reason).
pub(crate) fn summarize(path: &Path) -> Result<Option<GraphSummary>, String> {
    let Some(stored) = super::persist::read(path)? else {
        return Ok(None);
    };
    let names: BTreeMap<u64, String> = stored
        .fingerprints
        .iter()
        .map(|(id, name, _)| (*id, name.clone()))
        .collect();
    let name = |id: u64| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{id:016x}"))
    };
    let mut summary = GraphSummary {
        entries: stored.nodes.len() as u64,
        tracked_files: stored
            .files
            .iter()
            .map(|(_, file)| file.path.display().to_string())
            .collect(),
        ..GraphSummary::default()
    };
    let mut edges: BTreeMap<(String, String), u64> = BTreeMap::new();
    for ((cache, _), node) in &stored.nodes {
        let reader = name(*cache);
        *summary.entries_per_cache.entry(reader.clone()).or_default() += 1;
        if node.state != super::NodeState::Clean {
            summary.stale_entries += 1;
        }
        for input in node.inputs.iter() {
            let counter = match input.source {
                Source::FILES => summary.file_reads.entry(reader.clone()).or_default(),
                Source::VALUES => summary.value_reads.entry(reader.clone()).or_default(),
                source => edges.entry((name(source), reader.clone())).or_default(),
            };
            *counter += 1;
        }
    }
    summary.edges = edges
        .into_iter()
        .map(|((from, to), reads)| RecordedEdge { from, to, reads })
        .collect();
    Ok(Some(summary))
}
