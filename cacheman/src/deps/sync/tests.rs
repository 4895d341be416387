use std::sync::{Arc, Mutex};

use super::*;
use crate::deps::state::{HashSet, NodeState};
use crate::deps::{Holder, Input, cache_id};

/// What the graph took off a cache, by key hash.
#[derive(Default)]
struct Taken {
    dirty: Mutex<Vec<u64>>,
    suspect: Mutex<Vec<u64>>,
}

impl Holder for Taken {
    fn take_off(&self, dirty: &HashSet<u64>, suspect: &HashSet<u64>) {
        self.dirty.lock().unwrap().extend(dirty);
        self.suspect.lock().unwrap().extend(suspect);
    }
    fn invalidate_whole(&self) -> Result<(), Error> {
        Ok(())
    }
    fn stats(&self) -> crate::CacheStats {
        crate::CacheStats::default()
    }
}

/// A manager's graph over `dir` with caches `raw` and `derived` linked.
fn graph(dir: &Path) -> (Arc<EntryGraph>, Arc<Taken>) {
    let graph = EntryGraph::new("m", dir);
    let taken = Arc::new(Taken::default());
    let holder: Arc<dyn Holder> = taken.clone();
    graph.link("raw", 1, true, Arc::downgrade(&holder));
    graph.link("derived", 2, true, Arc::downgrade(&holder));
    (graph, taken)
}

/// Records `derived[key]`, which read `raw[key]` (stamp `key`), with stamp `stamp`.
fn derive(graph: &EntryGraph, key: u64, stamp: u64) {
    let input = Input {
        source: cache_id("raw"),
        key,
        seen: graph.stamp_for_read((cache_id("raw"), key), || key),
    };
    let since = graph.generation();
    let mut take_off = TakeOff::default();
    assert!(graph.computed(
        (cache_id("derived"), key),
        vec![input],
        stamp,
        since,
        &mut take_off
    ));
    graph.apply(take_off);
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[test]
fn saves_append_what_changed_and_the_snapshot_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (graph, _) = graph(dir.path());
    for key in 0..500 {
        derive(&graph, key, 1000 + key);
    }
    graph.save().unwrap();
    let snapshot = std::fs::read(&graph.path).unwrap();
    assert!(!graph.journal.exists(), "the first save writes a snapshot");
    derive(&graph, 7, 77);
    graph.save().unwrap();
    assert_eq!(
        std::fs::read(&graph.path).unwrap(),
        snapshot,
        "not rewritten"
    );
    let journal = len(&graph.journal);
    // The header and one frame of one node (and its input's, unchanged, not sent).
    assert!(
        journal > journal::HEADER_LEN && journal < 200,
        "{journal} bytes"
    );
    // Nothing changed: nothing written.
    graph.save().unwrap();
    assert_eq!(len(&graph.journal), journal);

    // A new process loads the snapshot with the journal replayed.
    let (again, _) = self::graph(dir.path());
    assert_eq!(
        again.node((cache_id("derived"), 7)),
        Some((NodeState::Clean, 77))
    );
    assert_eq!(again.lock().nodes.len(), 1000);
}

#[test]
fn an_invalidation_appended_by_one_graph_reaches_the_other_at_its_next_save() {
    let dir = tempfile::tempdir().unwrap();
    let (one, _) = graph(dir.path());
    for key in 0..10 {
        derive(&one, key, 100 + key);
    }
    one.save().unwrap();
    let (two, taken) = graph(dir.path());
    assert_eq!(two.lock().nodes.len(), 20);
    // One more change each, so that both append.
    derive(&two, 20, 120);
    two.save().unwrap();
    let snapshot = std::fs::read(&one.path).unwrap();

    one.invalidate([((cache_id("raw"), 3), None)]);
    one.save().unwrap();
    assert_eq!(
        std::fs::read(&one.path).unwrap(),
        snapshot,
        "appended, not rewritten"
    );
    // `two` changed nothing since: its save reads `one`'s frame and takes the entries off.
    two.save().unwrap();
    assert_eq!(
        two.node((cache_id("raw"), 3)).map(|n| n.0),
        Some(NodeState::Dirty)
    );
    assert_eq!(
        two.node((cache_id("derived"), 3)).map(|n| n.0),
        Some(NodeState::Suspect)
    );
    assert!(taken.dirty.lock().unwrap().contains(&3));
    assert!(taken.suspect.lock().unwrap().contains(&3));
    // And `one` learned of `two`'s new entry at its own save, which read `two`'s frame before
    // appending its own.
    assert_eq!(
        one.node((cache_id("derived"), 20)),
        Some((NodeState::Clean, 120))
    );
}

#[test]
fn a_journal_past_the_snapshot_is_compacted_in_the_background_and_others_resync() {
    let dir = tempfile::tempdir().unwrap();
    let (one, _) = graph(dir.path());
    one.compaction.set_threshold(0);
    for key in 0..20 {
        derive(&one, key, key);
    }
    one.save().unwrap();
    let (two, _) = graph(dir.path());
    let snapshot = len(&one.path);
    let mut stamp = 1000;
    // The journal after each save (0 once compacted): each save appends one frame, and the
    // one that takes the journal past the snapshot starts a compaction.
    let mut journal = Vec::new();
    while one.synced().generation == Some(1) {
        assert!(
            stamp < 2000,
            "no compaction: {journal:?}, snapshot {snapshot}"
        );
        for key in 0..5 {
            stamp += 1;
            derive(&one, key, stamp);
        }
        one.save().unwrap();
        one.compaction.wait();
        journal.push(len(&one.journal));
    }
    let [.., before, last, compacted] = journal[..] else {
        panic!("compacted too soon: {journal:?}, snapshot {snapshot}");
    };
    assert_eq!(compacted, 0);
    assert!(
        last <= snapshot,
        "not compacted when due: {journal:?}, {snapshot}"
    );
    assert!(
        last + (last - before) > snapshot,
        "too early: {journal:?}, {snapshot}"
    );
    assert!(!one.journal.exists(), "compacted: the journal went");
    let stored = persist::read(&one.path).unwrap().unwrap().0;
    assert_eq!(stored.generation, 2);
    assert_eq!(one.synced().generation, Some(2));
    // The other graph sees a new snapshot and reads it whole.
    two.save().unwrap();
    assert_eq!(two.synced().generation, Some(2));
    assert_eq!(
        two.node((cache_id("derived"), 0)).map(|n| n.1),
        one.node((cache_id("derived"), 0)).map(|n| n.1)
    );
    // Its next change appends to a journal of the new generation.
    derive(&two, 99, 99);
    two.save().unwrap();
    assert_eq!(journal::generation_at(&two.journal), Some(2));
}

#[test]
fn a_version_1_graph_loads_and_the_first_save_writes_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let (one, _) = graph(dir.path());
    derive(&one, 1, 11);
    one.save().unwrap();
    // Rewrite it as version 1: the same payload under the old header.
    let bytes = std::fs::read(&one.path).unwrap();
    let payload = &bytes[34..];
    let mut old = b"CMGRAPH\0".to_vec();
    old.extend_from_slice(&1u16.to_le_bytes());
    old.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    old.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    old.extend_from_slice(payload);
    std::fs::write(&one.path, &old).unwrap();

    let (two, _) = graph(dir.path());
    assert_eq!(
        two.node((cache_id("derived"), 1)),
        Some((NodeState::Clean, 11))
    );
    assert_eq!(two.synced().generation, None);
    derive(&two, 2, 22);
    two.save().unwrap();
    assert!(
        !two.journal.exists(),
        "a version 1 snapshot is rewritten, not continued"
    );
    let stored = persist::read(&two.path).unwrap().unwrap().0;
    assert_eq!((stored.generation, stored.nodes.len()), (1, 4));
}

#[test]
fn a_failed_append_keeps_the_changes_for_the_next_save() {
    let dir = tempfile::tempdir().unwrap();
    let (one, _) = graph(dir.path());
    derive(&one, 1, 11);
    one.save().unwrap();
    derive(&one, 2, 22);
    // The journal's name is taken by a directory: the append fails.
    std::fs::create_dir(&one.journal).unwrap();
    assert!(one.save().is_err());
    assert!(one.lock().changed.contains(&(cache_id("derived"), 2)));
    std::fs::remove_dir(&one.journal).unwrap();
    one.save().unwrap();
    let (two, _) = graph(dir.path());
    assert_eq!(
        two.node((cache_id("derived"), 2)),
        Some((NodeState::Clean, 22))
    );
}

#[test]
fn a_node_forgotten_by_one_graph_goes_from_the_other_unless_it_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let (one, _) = graph(dir.path());
    for key in 0..3 {
        derive(&one, key, 100 + key);
    }
    one.save().unwrap();
    let (two, _) = graph(dir.path());
    // `derived[1]` left its cache in `one`: its node goes (nothing read it); `raw[1]` stays,
    // since `derived[1]`'s record in `two` still reads it.
    one.forget(cache_id("derived"), &[1]);
    one.save().unwrap();
    assert!(one.journal.exists());
    two.save().unwrap();
    assert_eq!(two.node((cache_id("derived"), 1)), None);
    assert!(two.node((cache_id("raw"), 1)).is_some());
    assert!(two.node((cache_id("derived"), 2)).is_some());
    // A third process replays the removal from the journal.
    let (three, _) = graph(dir.path());
    assert_eq!(three.node((cache_id("derived"), 1)), None);
    assert_eq!(three.lock().nodes.len(), 5);
}
