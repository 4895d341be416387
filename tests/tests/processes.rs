//! Several processes (and several managers in one process) on one cache directory: the file is
//! never corrupted, nobody's entries are lost, and an invalidation wins over stale contents.

use std::process::Command;

use cacheman::CacheManager;
use tests::child;

const WRITER: &str = env!("CARGO_BIN_EXE_multi_writer");

fn manager(dir: &tempfile::TempDir) -> CacheManager {
    CacheManager::new("shared", dir.path())
}

#[test]
fn concurrent_writer_processes_end_with_the_union_of_their_entries() {
    const WRITERS: u64 = 4;
    const KEYS: u64 = 150;
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (1..=WRITERS)
        .map(|id| {
            Command::new(WRITER)
                .args([
                    "write",
                    dir.path().to_str().unwrap(),
                    &id.to_string(),
                    &KEYS.to_string(),
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child::wait(&mut child, "a writer").success());
    }
    let cache = manager(&dir).register_cache::<u64, u64>("union").unwrap();
    cache.reload().unwrap();
    assert_eq!(cache.len() as u64, WRITERS * KEYS, "entries were lost");
    for id in 1..=WRITERS {
        for i in 0..KEYS {
            assert_eq!(cache.get(&(id * 1_000_000 + i)), Some(id));
        }
    }
}

#[test]
fn an_invalidation_in_another_process_wins_over_a_stale_save() {
    let dir = tempfile::tempdir().unwrap();
    let holder = manager(&dir);
    holder.register_dependent_cache("root", "edge").unwrap();
    let root = holder.register_cache::<u64, u64>("root").unwrap();
    let edge = holder.register_cache::<u64, u64>("edge").unwrap();
    root.extend([(1, 1), (2, 2)]);
    edge.extend([(1, 5), (2, 10)]);
    holder.save_all_cache_contents().unwrap();

    // Another process invalidates root; it never registered edge, but knows no edge: only root.
    let out = child::output(Command::new(WRITER).args([
        "invalidate",
        dir.path().to_str().unwrap(),
        "root",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // We still hold root's old entries, change one, and save: the invalidation wins.
    root.insert(3, 3);
    root.save().unwrap();
    assert!(
        root.is_empty(),
        "stale entries survived in memory: {root:?}"
    );
    let fresh = manager(&dir).register_cache::<u64, u64>("root").unwrap();
    assert!(
        fresh.is_empty(),
        "stale entries were written back: {fresh:?}"
    );
}

#[test]
fn an_invalidation_is_seen_by_others_at_their_next_load() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (manager(&dir), manager(&dir));
    let in_a = a.register_cache::<u64, u64>("c").unwrap();
    in_a.insert(1, 1);
    in_a.save().unwrap();
    let in_b = b.register_cache::<u64, u64>("c").unwrap();
    assert_eq!(in_b.get(&1), Some(1));

    in_a.invalidate().unwrap();
    in_b.reload().unwrap();
    assert!(in_b.is_empty());
}

#[test]
fn each_side_keeps_its_own_changes_and_adopts_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (manager(&dir), manager(&dir));
    let in_a = a.register_cache::<u64, u64>("c").unwrap();
    let in_b = b.register_cache::<u64, u64>("c").unwrap();
    in_a.extend([(1, 1), (2, 2)]);
    in_a.save().unwrap();
    in_b.insert(3, 3);
    in_b.save().unwrap(); // merges a's 1 and 2
    assert_eq!(in_b.len(), 3);

    in_a.insert(1, 10); // a's change to a key b never touched
    in_b.remove(&2); // b removes a key a never touched again
    in_b.save().unwrap();
    in_a.save().unwrap();

    let fresh = manager(&dir).register_cache::<u64, u64>("c").unwrap();
    let mut rows: Vec<_> = fresh.snapshot().into_iter().collect();
    rows.sort();
    assert_eq!(rows, vec![(1, 10), (3, 3)]);
    // And a's memory follows the file.
    assert_eq!(in_a.get(&2), None);
    assert_eq!(in_a.get(&3), Some(3));
}

#[test]
fn a_clear_wins_over_entries_saved_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (manager(&dir), manager(&dir));
    let in_a = a.register_cache::<u64, u64>("c").unwrap();
    in_a.insert(1, 1);
    in_a.save().unwrap();
    let in_b = b.register_cache::<u64, u64>("c").unwrap();
    in_a.insert(2, 2);
    in_a.save().unwrap();
    in_b.clear();
    in_b.save().unwrap();
    let fresh = manager(&dir).register_cache::<u64, u64>("c").unwrap();
    assert!(fresh.is_empty());
}
