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
    /// The size of the snapshot (`.graph.deps`) in bytes.
    pub snapshot_bytes: u64,
    /// The size of its journal (`.graph.journal`: the saves appended since the snapshot) in
    /// bytes, 0 without one.
    pub journal_bytes: u64,
    /// Saves appended to the journal since the snapshot (its whole frames).
    pub journal_frames: u64,
    /// A torn last frame of the journal (a save cut off half-way, dropped at the next load),
    /// described.
    pub journal_torn: Option<String>,
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

/// Counts what the graph file at `path` and its journal hold (the snapshot with the journal's
/// saves replayed, as a program loads them). `Ok(None)`: there is none; `Err`: one of them
/// cannot be read or is damaged (the reason, naming the file).
pub(crate) fn summarize(path: &Path) -> Result<Option<GraphSummary>, String> {
    let journal = super::journal::path_beside(path);
    let read = super::sync::read_all(path, &journal).map_err(|unreadable| {
        match unreadable.path == journal {
            true => format!("journal {} {}", journal.display(), unreadable.reason),
            false => unreadable.reason,
        }
    })?;
    let Some(read) = read else {
        return Ok(None);
    };
    let journal_bytes = match read.synced.offset {
        0 => 0,
        _ => read.synced.journal.as_ref().map_or(0, |s| s.len()),
    };
    let (snapshot_bytes, journal_frames) = (read.snapshot_len, read.frames_read as u64);
    let journal_torn = read.torn.clone();
    let folded = read.into_folded();
    let name = |id: u64| {
        folded
            .fingerprints
            .get(&id)
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| format!("#{id:016x}"))
    };
    let nodes: Vec<_> = folded
        .nodes
        .iter()
        .filter_map(|(id, node)| Some((id, node.as_ref()?)))
        .collect();
    let mut summary = GraphSummary {
        entries: nodes.len() as u64,
        tracked_files: folded
            .files
            .values()
            .map(|file| file.path.display().to_string())
            .collect(),
        snapshot_bytes,
        journal_bytes,
        journal_frames,
        journal_torn,
        ..GraphSummary::default()
    };
    summary.tracked_files.sort();
    let mut edges: BTreeMap<(String, String), u64> = BTreeMap::new();
    for ((cache, _), node) in nodes {
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
