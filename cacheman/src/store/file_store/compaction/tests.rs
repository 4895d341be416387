//! The compaction that blocks no save, at the store: its phases, and the rule for a
//! `<name>.journal.next` that a crash left.

use std::path::Path;

use super::*;
use crate::shards::stamped_rows as at;
use crate::store::file_store::tests::{pairs, sorted as loaded};
use crate::store::files::cache_path;
use crate::store::{Identity, Outgoing, Store};

fn store(dir: &Path) -> FileStore<String, u32> {
    let identity = Identity::new::<String, u32>(Codec::Postcard, 7, false);
    FileStore::new("c", cache_path(dir, "c"), identity)
}

fn whole(rows: &[(&str, u32)]) -> Outgoing<String, u32> {
    Outgoing {
        rows: Rows::Decoded(at(rows
            .iter()
            .map(|(k, v)| (k.to_string(), *v, 0))
            .collect())),
        epoch: 0,
        journal: None,
    }
}

fn changes(rows: &[(&str, u32)], removed: &[&str]) -> Changes<String, u32> {
    Changes {
        rows: at(rows.iter().map(|(k, v)| (k.to_string(), *v, 0)).collect()),
        removed: removed.iter().map(|k| k.to_string()).collect(),
        epoch: 0,
    }
}

/// A journal of `generation` holding one frame of `rows`.
fn journal_bytes(s: &FileStore<String, u32>, generation: u64, rows: &[(&str, u32)]) -> Vec<u8> {
    let mut bytes = JournalHeader::of(&s.identity, generation).encode();
    let rows = at(rows.iter().map(|(k, v)| (k.to_string(), *v, 0)).collect());
    bytes.extend(
        journal::encode_frame::<String, u32>("c", s.identity.layout(), &rows, &[]).unwrap(),
    );
    bytes
}

#[test]
fn a_next_journal_of_the_snapshots_generation_is_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.save(whole(&[("a", 1)])).unwrap();
    s.append(changes(&[("b", 2)], &[])).unwrap();
    let old_journal = std::fs::read(&s.journal).unwrap();
    // What a crash between the renames leaves: the snapshot of generation 2 in place, the
    // old journal (generation 1) beside it, and generation 2's journal not renamed yet.
    s.save(whole(&[("a", 1), ("b", 2)])).unwrap();
    assert_eq!(format_generation(&s.path), Some(2));
    std::fs::write(&s.journal, &old_journal).unwrap();
    std::fs::write(&s.next_journal, journal_bytes(&s, 2, &[("c", 3)])).unwrap();
    // `cacheman verify` reads the pair as the next open will.
    match crate::inspect::verify(&s.path, &mut |_, _| {}) {
        crate::inspect::Verification::Intact {
            journal_frames: 1,
            note: Some(note),
            ..
        } => assert!(
            note.contains("renamed when the cache is next opened"),
            "{note}"
        ),
        other => panic!("{other:?}"),
    }

    let again = store(dir.path());
    assert_eq!(loaded(&again), pairs(&[("a", 1), ("b", 2), ("c", 3)]));
    assert!(!again.next_journal.exists());
    assert_eq!(journal::generation_at(&again.journal), Some(2));
    // Appends go on after the frame it carried.
    again.append(changes(&[("d", 4)], &[])).unwrap();
    assert_eq!(
        loaded(&store(dir.path())),
        pairs(&[("a", 1), ("b", 2), ("c", 3), ("d", 4)])
    );
}

#[test]
fn a_next_journal_of_another_generation_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.save(whole(&[("a", 1)])).unwrap();
    s.append(changes(&[("b", 2)], &[])).unwrap();
    // What a crash before the snapshot's rename leaves: the new journal (generation 2) of a
    // snapshot that never came.
    std::fs::write(&s.next_journal, journal_bytes(&s, 2, &[("c", 3)])).unwrap();
    assert!(matches!(
        crate::inspect::verify(&s.path, &mut |_, _| {}),
        crate::inspect::Verification::Intact {
            journal_frames: 1,
            note: None,
            ..
        }
    ));

    let again = store(dir.path());
    assert_eq!(loaded(&again), pairs(&[("a", 1), ("b", 2)]));
    assert!(!again.next_journal.exists());
    assert_eq!(journal::generation_at(&again.journal), Some(1));
    // A torn one (no readable header) goes too.
    std::fs::write(&s.next_journal, b"CMJOU").unwrap();
    assert_eq!(loaded(&store(dir.path())), pairs(&[("a", 1), ("b", 2)]));
    assert!(!s.next_journal.exists());
}

/// Runs a compaction's phases on `s`, with `between` run after the first (while its
/// snapshot would be written) and `pending` as the keys changed in memory but not saved.
fn compact(
    s: &FileStore<String, u32>,
    memory: &[(&str, u32)],
    pending: &[&str],
    between: impl FnOnce(),
) -> Option<Merged<String, u32>> {
    let begun = s.begin_compaction(0).unwrap().unwrap();
    let (compacting, mut encoder) = begun.compaction.unwrap();
    for (k, v) in memory {
        encoder.put(&k.to_string(), v, RowMeta::default()).unwrap();
    }
    let mut rows = encoder.finish().unwrap();
    between();
    let pending = pending.iter().map(|k| k.to_string()).collect();
    let saved = s
        .saved_rows(&compacting, pending, &mut rows)
        .unwrap()
        .unwrap();
    s.finish_compaction(compacting, rows, saved).unwrap()
}

#[test]
fn frames_appended_during_a_compaction_are_carried_into_the_new_journal() {
    let dir = tempfile::tempdir().unwrap();
    let ours = store(dir.path());
    let theirs = store(dir.path());
    ours.save(whole(&[("a", 1), ("b", 1)])).unwrap();
    ours.append(changes(&[("c", 1)], &[])).unwrap();
    theirs.load().unwrap();
    // Memory: `b` changed to 9 and not saved; `d` inserted and not saved.
    let merged = compact(
        &ours,
        &[("a", 1), ("b", 9), ("c", 1), ("d", 5)],
        &["b", "d"],
        || {
            ours.append(changes(&[("a", 2)], &[])).unwrap();
            theirs.append(changes(&[("e", 7)], &["c"])).unwrap();
            ours.append(changes(&[("a", 3)], &[])).unwrap();
        },
    );
    // Ours were read by our own appends; theirs come back to adopt.
    assert!(merged.is_some());
    assert_eq!(format_generation(&ours.path), Some(2));
    assert!(!ours.next_journal.exists());
    // The unsaved `b` and `d` are not stored; every frame is, once, in order.
    let want = pairs(&[("a", 3), ("b", 1), ("e", 7)]);
    assert_eq!(loaded(&store(dir.path())), want);
    let checked = journal::check(&ours.journal).unwrap().unwrap().unwrap();
    assert_eq!((checked.generation, checked.frames), (2, 4));
    // Both go on appending to the new journal.
    ours.append(changes(&[("b", 9)], &[])).unwrap();
    theirs.append(changes(&[("f", 8)], &[])).unwrap();
    let want = pairs(&[("a", 3), ("b", 9), ("e", 7), ("f", 8)]);
    assert_eq!(loaded(&store(dir.path())), want);
}

#[test]
fn a_compaction_whose_snapshot_was_replaced_meanwhile_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ours = store(dir.path());
    let theirs = store(dir.path());
    ours.save(whole(&[("a", 1)])).unwrap();
    ours.append(changes(&[("b", 1)], &[])).unwrap();
    theirs.load().unwrap();
    let merged = compact(&ours, &[("a", 1), ("b", 1)], &[], || {
        theirs.save(whole(&[("z", 26)])).unwrap();
    });
    assert!(merged.is_none());
    assert_eq!(loaded(&store(dir.path())), pairs(&[("z", 26)]));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp.") || n.ends_with(".next"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}
