//! The file store's own tests: rows, identity; the journal's are in `journal/tests.rs`.
use super::*;
use crate::shards::stamped_rows as at;

fn plain(rows: Vec<(String, u32, u64)>, epoch: u64) -> Outgoing<String, u32> {
    Outgoing {
        rows: Rows::Decoded(at(rows)),
        epoch,
        journal: None,
    }
}

fn store(dir: &Path, stamped: bool) -> FileStore<String, u32> {
    let identity = Identity::new::<String, u32>(Codec::Postcard, 7, stamped);
    FileStore::new("c", files::cache_path(dir, "c"), identity)
}

#[test]
fn rows_round_trip_with_and_without_stamps() {
    let dir = tempfile::tempdir().unwrap();
    for stamped in [false, true] {
        let s = store(dir.path(), stamped);
        s.save(plain(vec![("a".into(), 1, 42)], 3)).unwrap();
        let loaded = s.load().unwrap().unwrap();
        let want = if stamped { 42 } else { 0 };
        assert_eq!(loaded.rows, at(vec![("a".to_string(), 1, want)]));
        assert_eq!(loaded.epoch, 3);
    }
}

#[test]
fn a_missing_file_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(store(dir.path(), false).load().unwrap().is_none());
}

#[test]
fn other_types_are_incompatible() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path(), false)
        .save(plain(vec![("a".into(), 1, 0)], 0))
        .unwrap();
    let identity = Identity::new::<String, u64>(Codec::Postcard, 7, false);
    let other: FileStore<String, u64> =
        FileStore::new("c", files::cache_path(dir.path(), "c"), identity);
    assert!(matches!(other.load(), Err(Error::Incompatible { .. })));
}

#[test]
fn another_function_fingerprint_is_incompatible() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path(), false)
        .save(plain(vec![("a".into(), 1, 0)], 0))
        .unwrap();
    let identity = Identity::new::<String, u32>(Codec::Postcard, 8, false);
    let other: FileStore<String, u32> =
        FileStore::new("c", files::cache_path(dir.path(), "c"), identity);
    let err = other.load().err().unwrap();
    assert!(err.to_string().contains("function fingerprint"), "{err}");
}

fn changes(rows: &[(&str, u32)], removed: &[&str], epoch: u64) -> Changes<String, u32> {
    Changes {
        rows: rows
            .iter()
            .map(|(k, v)| (k.to_string(), *v, RowMeta::default()))
            .collect(),
        removed: removed.iter().map(|k| k.to_string()).collect(),
        epoch,
    }
}

pub(super) fn sorted(store: &FileStore<String, u32>) -> Vec<(String, u32)> {
    let mut rows: Vec<_> = store
        .load()
        .unwrap()
        .unwrap()
        .rows
        .into_iter()
        .map(|(k, v, _)| (k, v))
        .collect();
    rows.sort();
    rows
}

pub(super) fn pairs(rows: &[(&str, u32)]) -> Vec<(String, u32)> {
    rows.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn appends_need_a_snapshot_first_then_replay_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), false);
    assert!(s.takes_changes());
    assert!(s.append(changes(&[("a", 1)], &[], 0)).unwrap().is_none());
    s.save(plain(vec![("a".into(), 1, 0), ("b".into(), 2, 0)], 0))
        .unwrap();
    let snapshot = std::fs::read(&s.path).unwrap();
    assert!(matches!(
        s.append(changes(&[("c", 3), ("a", 10)], &["b"], 0)),
        Ok(Some(Merged::Written))
    ));
    assert!(matches!(
        s.append(changes(&[("b", 20)], &["c"], 0)),
        Ok(Some(Merged::Adopt { .. }))
    ));
    // The snapshot was not touched; the journal holds the changes.
    assert_eq!(std::fs::read(&s.path).unwrap(), snapshot);
    assert_eq!(sorted(&s), pairs(&[("a", 10), ("b", 20)]));
    // Another handle (another process) reads the same.
    assert_eq!(
        sorted(&store(dir.path(), false)),
        pairs(&[("a", 10), ("b", 20)])
    );
}

#[test]
fn another_process_frames_come_back_to_adopt_without_our_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (store(dir.path(), false), store(dir.path(), false));
    one.save(plain(vec![("a".into(), 1, 0)], 0)).unwrap();
    two.load().unwrap();
    two.append(changes(&[("b", 2), ("c", 3)], &["a"], 0))
        .unwrap();
    let merged = one.append(changes(&[("c", 30)], &[], 0)).unwrap();
    let Some(Merged::Adopt { rows, gone }) = merged else {
        panic!("expected Adopt");
    };
    assert_eq!(rows, at(vec![("b".to_string(), 2, 0)]));
    assert_eq!(gone, vec!["a".to_string()]);
    // Ours came last: it wins on disk too.
    assert_eq!(sorted(&two), pairs(&[("b", 2), ("c", 30)]));
}

#[test]
fn a_compaction_elsewhere_comes_back_as_a_resync() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (store(dir.path(), false), store(dir.path(), false));
    one.save(plain(vec![("a".into(), 1, 0)], 0)).unwrap();
    two.load().unwrap();
    two.save(plain(vec![("a".into(), 1, 0), ("b".into(), 2, 0)], 0))
        .unwrap();
    let merged = one.append(changes(&[("a", 10)], &[], 0)).unwrap();
    let Some(Merged::Resync { rows }) = merged else {
        panic!("expected Resync");
    };
    assert_eq!(rows, at(vec![("b".to_string(), 2, 0)]));
    assert_eq!(sorted(&two), pairs(&[("a", 10), ("b", 2)]));
}

#[test]
fn an_invalidation_elsewhere_wins_over_an_append() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (store(dir.path(), false), store(dir.path(), false));
    one.save(plain(vec![("a".into(), 1, 0)], 0)).unwrap();
    two.load().unwrap();
    two.invalidate(5).unwrap();
    let merged = one.append(changes(&[("b", 2)], &[], 0)).unwrap();
    assert!(matches!(merged, Some(Merged::Invalidated { epoch: 5, .. })));
    assert!(sorted(&two).is_empty());
    // And an epoch of ours above the file's asks for a whole snapshot.
    assert!(one.append(changes(&[("b", 2)], &[], 9)).unwrap().is_none());
}

#[test]
fn a_journal_left_by_a_crashed_compaction_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), false);
    s.save(plain(vec![("a".into(), 1, 0)], 0)).unwrap();
    s.append(changes(&[("b", 2)], &[], 0)).unwrap();
    let old_journal = std::fs::read(&s.journal).unwrap();
    s.save(plain(vec![("a".into(), 1, 0), ("b".into(), 2, 0)], 0))
        .unwrap();
    assert!(!s.journal.exists());
    // As if the compaction died between its rename and the journal's removal.
    std::fs::write(&s.journal, &old_journal).unwrap();
    assert_eq!(sorted(&s), pairs(&[("a", 1), ("b", 2)]));
    // The next append starts a journal of the snapshot's generation over the stale one.
    s.append(changes(&[("c", 3)], &["a"], 0)).unwrap();
    assert_eq!(sorted(&s), pairs(&[("b", 2), ("c", 3)]));
}

#[test]
fn a_torn_last_frame_is_dropped_and_the_next_append_goes_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), false);
    s.save(plain(vec![("a".into(), 1, 0)], 0)).unwrap();
    s.append(changes(&[("b", 2)], &[], 0)).unwrap();
    let whole = std::fs::read(&s.journal).unwrap().len();
    s.append(changes(&[("c", 3)], &[], 0)).unwrap();
    let torn = std::fs::read(&s.journal).unwrap();
    std::fs::write(&s.journal, &torn[..torn.len() - 3]).unwrap();
    let again = store(dir.path(), false);
    assert_eq!(sorted(&again), pairs(&[("a", 1), ("b", 2)]));
    again.append(changes(&[("d", 4)], &[], 0)).unwrap();
    assert!(std::fs::read(&s.journal).unwrap().len() > whole);
    assert_eq!(
        sorted(&store(dir.path(), false)),
        pairs(&[("a", 1), ("b", 2), ("d", 4)])
    );
}

#[test]
fn damage_before_the_last_frame_refuses_the_journal_and_leaves_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), false);
    s.save(plain(vec![("a".into(), 1, 0)], 0)).unwrap();
    s.append(changes(&[("b", 2)], &[], 0)).unwrap();
    s.append(changes(&[("c", 3)], &[], 0)).unwrap();
    let mut bytes = std::fs::read(&s.journal).unwrap();
    bytes[journal::HEADER_LEN as usize + 10] ^= 0xff;
    std::fs::write(&s.journal, &bytes).unwrap();
    let snapshot = std::fs::read(&s.path).unwrap();
    let err = store(dir.path(), false).load().err().unwrap();
    let text = err.to_string();
    assert!(matches!(err, Error::Corrupt { .. }), "{text}");
    assert!(
        text.contains("c.journal") && text.contains("before the last frame"),
        "{text}"
    );
    assert_eq!(std::fs::read(&s.path).unwrap(), snapshot);
    assert_eq!(std::fs::read(&s.journal).unwrap(), bytes);
    // The next save cannot append after damage: it writes a whole snapshot.
    let after = store(dir.path(), false);
    assert!(
        after
            .append(changes(&[("d", 4)], &[], 0))
            .unwrap()
            .is_none()
    );
    after.save(plain(vec![("d".into(), 4, 0)], 0)).unwrap();
    assert_eq!(sorted(&after), pairs(&[("d", 4)]));
}

#[test]
fn compaction_is_due_once_the_journal_outgrows_the_snapshot_and_the_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), false).with_compaction_from(200);
    s.save(plain(vec![("a".into(), 1, 0)], 0)).unwrap();
    let mut appended = 0;
    while !s.compaction_due() {
        s.append(changes(&[("b", appended)], &[], 0)).unwrap();
        appended += 1;
        assert!(appended < 100);
    }
    assert!(std::fs::metadata(&s.journal).unwrap().len() > 200);
    s.save(plain(
        vec![("a".into(), 1, 0), ("b".into(), appended - 1, 0)],
        0,
    ))
    .unwrap();
    assert!(!s.compaction_due());
}

/// A snapshot of `rows` in format `version` (1 to 3: unsized rows; 1 also counts them in
/// front, and has the shorter header of 2), as builds before this one wrote it.
fn old_snapshot(s: &FileStore<String, u32>, version: u16, rows: &[(&str, u32)], generation: u64) {
    let pairs: Vec<(String, u32)> = pairs(rows);
    let payload = match version {
        1 => Codec::Postcard.encode(&pairs, 0).unwrap(),
        _ => {
            let unsized_rows = codec::Layout {
                stamped: false,
                sized: false,
                counted: false,
            };
            let mut encoder = codec::PostcardRows::new("c", unsized_rows, 0);
            for (k, v) in &pairs {
                encoder.put(k, v, RowMeta::default()).unwrap();
            }
            encoder.bytes().to_vec()
        }
    };
    let header = Header {
        version,
        codec: Codec::Postcard.id(),
        type_fingerprint: s.identity.type_fingerprint,
        fn_fingerprint: s.identity.fn_fingerprint,
        epoch: 0,
        entries: pairs.len() as u64,
        payload_len: payload.len() as u64,
        payload_crc: crc32fast::hash(&payload),
        generation,
        counted: false,
    };
    let head = match version {
        3 => header.encode().to_vec(),
        _ => header.encode_v2(),
    };
    std::fs::write(&s.path, [head, payload].concat()).unwrap();
}

/// The store of a bounded cache: its rows carry use counts.
fn counted_store(dir: &Path) -> FileStore<String, u32> {
    let identity = Identity::new::<String, u32>(Codec::Postcard, 7, false).with_counts(true);
    FileStore::new("c", files::cache_path(dir, "c"), identity)
}

fn uses_of(store: &FileStore<String, u32>) -> Vec<(String, u8)> {
    let mut rows: Vec<_> = store.load().unwrap().unwrap().rows;
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.into_iter()
        .map(|(k, _, meta)| (k, meta.uses))
        .collect()
}

#[test]
fn files_of_format_versions_1_to_3_still_load() {
    for version in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), false);
        old_snapshot(&s, version, &[("a", 1), ("b", 2)], 0);
        assert_eq!(
            sorted(&store(dir.path(), false)),
            pairs(&[("a", 1), ("b", 2)]),
            "version {version}"
        );
        // A bounded cache reads them too, every count 0.
        let counts = uses_of(&counted_store(dir.path()));
        assert_eq!(
            counts,
            vec![("a".into(), 0), ("b".into(), 0)],
            "version {version}"
        );
    }
}

#[test]
fn use_counts_round_trip_in_snapshots_and_frames_and_are_read_by_any_cache() {
    let dir = tempfile::tempdir().unwrap();
    let s = counted_store(dir.path());
    let meta = |uses| RowMeta { stamp_ms: 0, uses };
    s.save(Outgoing {
        rows: Rows::Decoded(vec![("a".into(), 1, meta(3)), ("b".into(), 2, meta(0))]),
        epoch: 0,
        journal: None,
    })
    .unwrap();
    let mut changes = changes(&[("c", 3)], &[], 0);
    changes.rows[0].2 = meta(2);
    s.append(changes).unwrap().unwrap();
    let want = vec![("a".into(), 3), ("b".into(), 0), ("c".into(), 2)];
    assert_eq!(uses_of(&counted_store(dir.path())), want);
    // A cache without a capacity reads the same files (the header says the rows are counted).
    assert_eq!(
        sorted(&store(dir.path(), false)),
        pairs(&[("a", 1), ("b", 2), ("c", 3)])
    );
    // Frames without counts do not go after frames with them: a whole snapshot instead.
    let plain_store = store(dir.path(), false);
    plain_store.load().unwrap();
    assert!(
        plain_store
            .append(changes_of(&[("d", 4)]))
            .unwrap()
            .is_none()
    );
}

fn changes_of(rows: &[(&str, u32)]) -> Changes<String, u32> {
    changes(rows, &[], 0)
}

#[test]
fn a_journal_of_version_1_is_replayed_then_compacted_not_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), false);
    old_snapshot(&s, 3, &[("a", 1), ("b", 2)], 5);
    // As the build before this one appended: journal version 1, unsized rows.
    let mut header = journal::JournalHeader::of(&s.identity, 5);
    header.version = 1;
    let unsized_rows = codec::Layout {
        stamped: false,
        sized: false,
        counted: false,
    };
    let frame = journal::encode_frame(
        "c",
        unsized_rows,
        &[("b".to_string(), 3u32, RowMeta::default())],
        &["a".to_string()],
    )
    .unwrap();
    std::fs::write(&s.journal, [header.encode(), frame].concat()).unwrap();
    let s = store(dir.path(), false);
    assert_eq!(sorted(&s), pairs(&[("b", 3)]));
    // Frames of this build's layout do not go after version 1's: a whole snapshot instead.
    assert!(s.append(changes(&[("c", 4)], &[], 0)).unwrap().is_none());
    s.save(plain(vec![("b".into(), 3, 0), ("c".into(), 4, 0)], 0))
        .unwrap();
    assert!(s.append(changes(&[("d", 5)], &[], 0)).unwrap().is_some());
    assert_eq!(
        sorted(&store(dir.path(), false)),
        pairs(&[("b", 3), ("c", 4), ("d", 5)])
    );
}

#[test]
fn a_snapshot_row_the_journal_replaces_is_not_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), false);
    s.save(plain(vec![("a".into(), 1, 0), ("b".into(), 2, 0)], 0))
        .unwrap();
    s.append(changes(&[("a", 7)], &[], 0)).unwrap().unwrap();
    // Row "a"'s value in the snapshot (after its key and length) made one that does not end
    // where its length says, with the checksums made good again: it is stepped over unread.
    let mut bytes = std::fs::read(&s.path).unwrap();
    let (header, payload) = Header::decode(&bytes).unwrap();
    let at = format::HEADER_LEN + payload.windows(3).position(|w| w == [1, b'a', 1]).unwrap();
    bytes[at + 3] = 0x80;
    let payload = bytes[format::HEADER_LEN..].to_vec();
    let header = Header {
        payload_crc: crc32fast::hash(&payload),
        ..header
    };
    std::fs::write(&s.path, [header.encode().to_vec(), payload].concat()).unwrap();
    assert_eq!(
        sorted(&store(dir.path(), false)),
        pairs(&[("a", 7), ("b", 2)])
    );
    // Without the journal, the same snapshot is refused.
    std::fs::remove_file(&s.journal).unwrap();
    assert!(store(dir.path(), false).load().is_err());
}

#[test]
fn a_save_without_changes_appends_nothing_but_still_adopts() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (store(dir.path(), false), store(dir.path(), false));
    one.save(plain(vec![("a".into(), 1, 0)], 0)).unwrap();
    two.load().unwrap();
    assert!(one.append(changes(&[], &[], 0)).unwrap().is_some());
    assert!(!one.journal.exists(), "an empty save created a journal");
    two.append(changes(&[("b", 2)], &[], 0)).unwrap();
    let len = std::fs::metadata(&one.journal).unwrap().len();
    let Some(Merged::Adopt { rows, .. }) = one.append(changes(&[], &[], 0)).unwrap() else {
        panic!("expected Adopt");
    };
    assert_eq!(rows, at(vec![("b".to_string(), 2, 0)]));
    assert_eq!(std::fs::metadata(&one.journal).unwrap().len(), len);
}

#[test]
fn frames_of_one_layout_never_follow_frames_of_the_other_after_a_resync() {
    let dir = tempfile::tempdir().unwrap();
    let (bounded, unbounded) = (counted_store(dir.path()), store(dir.path(), false));
    unbounded.save(plain(vec![("a".into(), 1, 0)], 0)).unwrap();
    bounded.load().unwrap();
    // The unbounded cache compacts (a snapshot the bounded one has not seen), then appends.
    unbounded
        .save(plain(vec![("a".into(), 1, 0), ("b".into(), 2, 0)], 0))
        .unwrap();
    unbounded
        .append(changes(&[("c", 3)], &[], 0))
        .unwrap()
        .unwrap();
    // The bounded one finds that snapshot and a journal without counts: no frame of its own
    // after them, but a whole snapshot.
    assert!(
        bounded
            .append(changes(&[("d", 4)], &[], 0))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        sorted(&store(dir.path(), false)),
        pairs(&[("a", 1), ("b", 2), ("c", 3)])
    );
}

#[test]
fn a_large_journal_replays_through_the_index_as_through_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), false);
    // Long enough keys for the journal to be read on a thread of its own.
    let key = |n: u32| format!("key number {n:08}");
    let snapshot: Vec<(String, u32, u64)> = (0..60_000).map(|n| (key(n), n, 0)).collect();
    s.save(plain(snapshot.clone(), 0)).unwrap();
    let mut want: std::collections::BTreeMap<String, u32> =
        snapshot.iter().map(|(k, v, _)| (k.clone(), *v)).collect();
    // Puts over the snapshot's keys and new ones, removals, a key removed after its put and
    // one put back after its removal, over two frames.
    let frames = [
        ((0..50_000).chain(60_000..70_000), 45_000..47_000, 100_000),
        ((45_000..45_500).chain(5_000..10_000), 0..3_000, 200_000),
    ];
    let mut named = 0;
    for (puts, removed, plus) in frames {
        let rows: Vec<(String, u32)> = puts.map(|n| (key(n), n + plus)).collect();
        let removed: Vec<String> = removed.map(key).collect();
        for k in &removed {
            want.remove(k);
        }
        want.extend(rows.iter().cloned());
        named += rows.len() + removed.len();
        let changes = Changes {
            rows: rows
                .into_iter()
                .map(|(k, v)| (k, v, RowMeta::default()))
                .collect(),
            removed,
            epoch: 0,
        };
        s.append(changes).unwrap().unwrap();
    }
    assert!(super::join::index_pays::<String>(named));
    let journal_len = std::fs::metadata(&s.journal).unwrap().len();
    assert!(
        journal_len >= super::journaled::READ_APART_FROM,
        "{journal_len}"
    );
    let want: Vec<(String, u32)> = want.into_iter().collect();
    assert_eq!(sorted(&store(dir.path(), false)), want);
    // Damage in its middle, read on that thread, is the journal's error.
    let mut damaged = std::fs::read(&s.journal).unwrap();
    damaged[journal_len as usize / 2] ^= 0x40;
    let damaged_dir = tempfile::tempdir().unwrap();
    let copy = store(damaged_dir.path(), false);
    std::fs::copy(&s.path, &copy.path).unwrap();
    std::fs::write(&copy.journal, &damaged).unwrap();
    let err = copy.load().err().expect("a damaged journal is refused");
    assert!(err.to_string().contains("journal"), "{err}");
    // The same journal over the same rows in a snapshot of format version 3 (unsized rows,
    // replayed through one table).
    let generation = journal::generation_at(&s.journal).unwrap();
    let journal_bytes = std::fs::read(&s.journal).unwrap();
    let old_dir = tempfile::tempdir().unwrap();
    let old = store(old_dir.path(), false);
    let rows: Vec<(&str, u32)> = snapshot.iter().map(|(k, v, _)| (k.as_str(), *v)).collect();
    old_snapshot(&old, 3, &rows, generation);
    std::fs::write(&old.journal, journal_bytes).unwrap();
    assert_eq!(sorted(&store(old_dir.path(), false)), want);
}
