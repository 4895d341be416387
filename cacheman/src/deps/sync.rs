//! Keeping the graph's files in step with memory and with other processes, all under
//! `.graph.lock`: a load reads the snapshot and replays its journal; a save appends one frame
//! of what this process changed since it last synced, after folding in the frames other
//! processes appended since its offset; a compaction (when the journal outgrows the snapshot,
//! on a background thread) writes a new snapshot of the next generation and removes the
//! journal. The merge rule is `merge.rs`'s.

use std::path::Path;
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};

use super::EntryGraph;
use super::journal::{self, Folded};
use super::persist::{self, Stored};
use super::state::{State, TakeOff};
use crate::Error;
use crate::background::Background;
use crate::store::{FileStamp, files, journal as framing};

/// Smallest journal that is compacted: as for the caches' journals, a journal is rewritten
/// into the snapshot once it is larger than the snapshot and than this.
pub(super) const COMPACT_FROM: u64 = 1 << 20;

/// The graph's files as this process last read or wrote them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Synced {
    /// The snapshot's stamp (`None`: there was none).
    pub(super) snapshot: Option<FileStamp>,
    /// The snapshot's generation, when it takes a journal (version 2): appends need one.
    pub(super) generation: Option<u64>,
    /// The journal's stamp (`None`: there was none).
    pub(super) journal: Option<FileStamp>,
    /// The end of the last whole frame read or written in the journal of `generation` (0:
    /// none of that generation yet).
    pub(super) offset: u64,
}

impl Synced {
    /// Whether the files are still as this process left them (no lock taken: a hint that
    /// decides whether a save that changed nothing has anything to read).
    pub(super) fn is_current(&self, snapshot: &Path, journal: &Path) -> bool {
        persist::stamp(snapshot) == self.snapshot && persist::stamp(journal) == self.journal
    }
}

/// A file of the graph that cannot be read, and why.
pub(super) struct Unreadable {
    pub(super) path: std::path::PathBuf,
    pub(super) reason: String,
}

/// A snapshot read and its journal replayed.
pub(super) struct ReadAll {
    pub(super) snapshot: Stored,
    /// The journal's frames, folded.
    pub(super) frames: Folded,
    pub(super) synced: Synced,
    /// The snapshot's size in bytes.
    pub(super) snapshot_len: u64,
    /// Whole frames replayed.
    pub(super) frames_read: usize,
    /// What was wrong with a torn last frame of the journal, which was dropped.
    pub(super) torn: Option<String>,
}

/// Reads the snapshot and replays its journal (under the lock, but for tools). `Ok(None)`: no
/// snapshot (a journal without one is of a removed snapshot, and ignored).
pub(super) fn read_all(snapshot: &Path, journal: &Path) -> Result<Option<ReadAll>, Unreadable> {
    let synced = Synced {
        snapshot: persist::stamp(snapshot),
        journal: persist::stamp(journal),
        ..Synced::default()
    };
    let stored = persist::read(snapshot).map_err(|reason| Unreadable {
        path: snapshot.to_owned(),
        reason,
    })?;
    let Some((stored, snapshot_len)) = stored else {
        return Ok(None);
    };
    let generation = stored.generation;
    let mut read = ReadAll {
        snapshot: stored,
        frames: Folded::default(),
        synced,
        snapshot_len,
        frames_read: 0,
        torn: None,
    };
    if generation > 0 {
        read.synced.generation = Some(generation);
        let tail = journal::read(journal, generation, 0, &mut read.frames).map_err(|reason| {
            Unreadable {
                path: journal.to_owned(),
                reason,
            }
        })?;
        if let Some(tail) = tail {
            read.synced.offset = tail.end;
            read.frames_read = tail.frames;
            read.torn = tail.torn;
        }
    }
    Ok(Some(read))
}

impl ReadAll {
    /// The snapshot with the journal's frames folded on top, for a merge or a count.
    pub(super) fn into_folded(self) -> Folded {
        let mut folded = Folded::of_snapshot(self.snapshot);
        folded.fold_folded(self.frames);
        folded
    }
}

fn warn_torn(manager: &str, journal: &Path, torn: Option<&str>) {
    if let Some(torn) = torn {
        log::warn!(
            "cacheman: the last frame of the dependency graph journal {} of manager \
             `{manager}` is torn ({torn}): a save cut off half-way, whose changes are dropped",
            journal.display()
        );
    }
}

/// Loads the graph's files into an empty state, under their lock if they exist.
pub(super) fn load(
    manager: &str,
    snapshot: &Path,
    journal: &Path,
    state: &mut State,
) -> Result<Synced, Unreadable> {
    // A lock file is made only where there is a graph to read.
    let _lock = match snapshot.exists() {
        true => files::lock_beside(snapshot).ok(),
        false => None,
    };
    match read_all(snapshot, journal)? {
        Some(read) => {
            warn_torn(manager, journal, read.torn.as_deref());
            read.frames.load_into(read.snapshot, state);
            Ok(read.synced)
        }
        None => Ok(Synced {
            journal: persist::stamp(journal),
            ..Synced::default()
        }),
    }
}

/// Removes the graph's files if they are still unreadable once locked (another process may
/// have written good ones since they were read).
pub(super) fn remove_if_unreadable(snapshot: &Path, journal: &Path) -> std::io::Result<()> {
    let _lock = files::lock_beside(snapshot)?;
    if read_all(snapshot, journal).is_err() {
        framing::remove(journal)?;
        framing::remove(snapshot)?;
    }
    Ok(())
}

/// Brings the graph's files up to date with memory: merges what other processes saved since
/// this process last synced (their nodes win unless this process changed the same node
/// since), then appends a frame of this process's changes, or writes a whole snapshot when
/// `compact` is set or an append cannot be made. Returns the entries of this process's caches
/// that the merge found invalidated elsewhere.
pub(super) fn save(graph: &EntryGraph, compact: bool) -> Result<TakeOff, Error> {
    let (manager, snapshot, journal) = (&graph.manager, &graph.path, &graph.journal);
    let io_error = |action: &'static str, path: &Path, source: std::io::Error| Error::Io {
        cache: format!("(dependency graph of manager `{manager}`)"),
        action,
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = snapshot.parent() {
        files::create_private_dir(dir)
            .map_err(|e| io_error("create the cache directory", snapshot, e))?;
    }
    let lock =
        files::lock_beside(snapshot).map_err(|e| io_error("lock the graph file", snapshot, e))?;
    // What a save killed half-way left behind.
    files::remove_orphan_temps(snapshot, &lock);
    files::remove_orphan_temps(journal, &lock);
    let mut synced = graph.synced().clone();
    let mut theirs = None;
    let mut rewrite = compact;
    let replaced = |reason: &str, path: &Path| {
        log::warn!(
            "cacheman: the dependency graph {} of manager `{manager}` is unreadable \
             ({reason}); it is replaced by this process's",
            path.display()
        );
    };
    if persist::stamp(snapshot) != synced.snapshot {
        // Another process wrote a snapshot (a compaction), or removed it: read it all.
        match read_all(snapshot, journal) {
            Ok(Some(read)) => {
                warn_torn(manager, journal, read.torn.as_deref());
                synced = read.synced.clone();
                theirs = Some(read.into_folded());
            }
            Ok(None) => synced = Synced::default(),
            Err(Unreadable { path, reason }) => {
                replaced(&reason, &path);
                synced = Synced::default();
            }
        }
    } else if let Some(generation) = synced.generation
        && persist::stamp(journal) != synced.journal
    {
        // Frames other processes appended since ours: only those are read.
        let mut folded = Folded::default();
        synced.journal = persist::stamp(journal);
        match journal::read(journal, generation, synced.offset, &mut folded) {
            Ok(Some(tail)) => {
                warn_torn(manager, journal, tail.torn.as_deref());
                synced.offset = tail.end;
                theirs = Some(folded);
            }
            Ok(None) => synced.offset = 0,
            Err(reason) => {
                replaced(&reason, journal);
                rewrite = true;
            }
        }
    }
    // Version 1 snapshots and missing ones take no journal: a snapshot of ours first.
    rewrite |= synced.generation.is_none();
    let generation = match rewrite {
        true => {
            synced
                .generation
                .unwrap_or(0)
                .max(journal::generation_at(journal).unwrap_or(0))
                + 1
        }
        false => synced.generation.unwrap_or(0),
    };
    let mut take_off = TakeOff::default();
    let (bytes, changed, fingerprints) = {
        let mut state = graph.lock();
        if let Some(theirs) = theirs {
            super::merge::merge(&mut state, theirs, &mut take_off);
        }
        let changed = std::mem::take(&mut state.changed);
        let fingerprints = std::mem::replace(&mut state.fingerprints_changed, false);
        let frame = match rewrite {
            true => None,
            false => journal::encode_frame(&state, &changed, fingerprints),
        };
        // Changes too large for one frame (4 GiB) go into a snapshot instead.
        rewrite |= frame.is_none() && (fingerprints || !changed.is_empty());
        let bytes = match rewrite {
            true => Some(persist::encode(&state, generation)),
            false => frame,
        };
        (bytes, changed, fingerprints)
    };
    // What was read is merged whatever happens next.
    *graph.synced() = synced.clone();
    let written = match bytes {
        None => Ok(synced),
        Some(bytes) if rewrite => write_snapshot(snapshot, journal, &bytes, generation)
            .map_err(|(action, path, e)| io_error(action, &path, e)),
        Some(frame) => append(journal, synced, generation, &frame)
            .map_err(|(action, e)| io_error(action, journal, e)),
    };
    drop(lock);
    match written {
        Ok(now) => {
            let due = now.offset > graph.compaction.threshold()
                && now.offset > now.snapshot.as_ref().map_or(0, |s| s.len());
            *graph.synced() = now;
            if due && !compact {
                graph.compaction.start();
            }
            Ok(take_off)
        }
        Err(err) => {
            // Not written: the changes stay pending for the next save.
            let mut state = graph.lock();
            state.changed.extend(changed);
            state.fingerprints_changed |= fingerprints;
            drop(state);
            graph.apply(take_off);
            Err(err)
        }
    }
}

type Failure = (&'static str, std::path::PathBuf, std::io::Error);

/// Writes a whole snapshot of `generation` and removes the journal it replaces (a crash in
/// between leaves a journal of an older generation, which is ignored).
fn write_snapshot(
    snapshot: &Path,
    journal: &Path,
    bytes: &[u8],
    generation: u64,
) -> Result<Synced, Failure> {
    files::atomic_write(snapshot, &[bytes], None)
        .map_err(|e| ("write the graph file", snapshot.to_owned(), e))?;
    framing::remove(journal)
        .map_err(|e| ("remove the old graph journal", journal.to_owned(), e))?;
    Ok(Synced {
        snapshot: persist::stamp(snapshot),
        generation: Some(generation),
        journal: None,
        offset: 0,
    })
}

/// Appends `frame` to the journal of `generation`, starting one (written beside, renamed in,
/// the directory synced) if there is none of that generation yet.
fn append(
    journal: &Path,
    mut synced: Synced,
    generation: u64,
    frame: &[u8],
) -> Result<Synced, (&'static str, std::io::Error)> {
    if synced.offset == 0 {
        files::atomic_write(journal, &[&journal::header(generation)], None)
            .map_err(|e| ("start the graph journal", e))?;
        synced.offset = journal::HEADER_LEN;
    }
    synced.offset = framing::append(journal, synced.offset, frame, None)
        .map_err(|e| ("append to the graph journal", e))?;
    synced.journal = persist::stamp(journal);
    Ok(synced)
}

/// The graph's background compaction: at most one at a time, on a `cacheman-graph-compact`
/// thread, started by a save whose journal outgrew the snapshot.
pub(super) struct Compaction {
    graph: Weak<EntryGraph>,
    job: Background,
    /// Smallest journal compacted ([`COMPACT_FROM`]; tests lower it).
    threshold: AtomicU64,
}

impl Compaction {
    pub(super) fn new(graph: Weak<EntryGraph>) -> Self {
        Compaction {
            graph,
            job: Background::default(),
            threshold: AtomicU64::new(COMPACT_FROM),
        }
    }

    fn threshold(&self) -> u64 {
        self.threshold.load(Ordering::Relaxed)
    }

    /// Compacts journals from `bytes` on instead of [`COMPACT_FROM`] (tests only).
    #[cfg(test)]
    pub(super) fn set_threshold(&self, bytes: u64) {
        self.threshold.store(bytes, Ordering::Relaxed);
    }

    /// Waits for a background compaction in progress, if any.
    #[cfg(test)]
    pub(super) fn wait(&self) {
        self.job.wait();
    }

    fn start(&self) {
        let graph = Weak::clone(&self.graph);
        // Without a thread (a limit on threads) the journal grows until a later save starts one.
        self.job.start("cacheman-graph-compact", move || {
            let Some(graph) = graph.upgrade() else {
                return;
            };
            if let Err(err) = graph.compact() {
                log::warn!(
                    "cacheman: background compaction of the dependency graph of manager `{}` \
                     failed: {err}; its journal is kept, and compaction is tried again after a \
                     later save",
                    graph.manager
                );
            }
        });
    }
}

#[cfg(test)]
mod tests;
