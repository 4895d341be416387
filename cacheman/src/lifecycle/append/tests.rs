//! Saves that append their changes, and compaction.

use std::sync::Arc;

use super::*;
use crate::options::CacheOptions;
use crate::store::files::cache_path;
use crate::store::{Codec, FileStore, Identity};

fn cache(dir: &std::path::Path, compact_from: u64) -> Arc<CacheInner<u64, String>> {
    let identity = Identity::new::<u64, String>(Codec::Postcard, 0, false);
    let store =
        FileStore::new("c", cache_path(dir, "c"), identity).with_compaction_from(compact_from);
    cache_on(store)
}

/// A cache on `store`, which compacts in the background, loaded.
pub(in crate::lifecycle) fn cache_on(
    store: FileStore<u64, String>,
) -> Arc<CacheInner<u64, String>> {
    let inner = Arc::new(CacheInner::new(
        "c",
        CacheOptions::new(),
        Arc::new(crate::SystemClock),
        Hooks::default(),
        Some(Box::new(store)),
    ));
    inner.compaction.enable(Arc::downgrade(&inner));
    inner.load_or_build(true).unwrap();
    inner
}

fn insert(cache: &CacheInner<u64, String>, keys: std::ops::Range<u64>) {
    for key in keys {
        on_maps!(cache, s, now => s.insert(key, format!("value {key}"), now));
        cache.note_changes(1);
    }
}

fn reloaded(dir: &std::path::Path) -> Vec<u64> {
    let again = cache(dir, u64::MAX);
    let mut keys: Vec<u64> = again.snapshot_rows().into_iter().map(|r| r.0).collect();
    keys.sort_unstable();
    keys
}

#[test]
fn a_save_of_a_few_changes_appends_them_and_leaves_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let c = cache(dir.path(), u64::MAX);
    insert(&c, 0..1_000);
    c.save_now().unwrap();
    let path = cache_path(dir.path(), "c");
    let snapshot = std::fs::read(&path).unwrap();
    insert(&c, 1_000..1_010);
    on_maps!(c, s, now => s.remove(&3, now));
    c.save_now().unwrap();
    assert_eq!(c.pending_changes(), 0);
    assert_eq!(std::fs::read(&path).unwrap(), snapshot);
    let journal = std::fs::metadata(path.with_extension("journal"))
        .unwrap()
        .len();
    assert!(journal < 400, "{journal} bytes for 11 changes");
    let want: Vec<u64> = (0..1_010).filter(|&k| k != 3).collect();
    assert_eq!(reloaded(dir.path()), want);
}

#[test]
fn compaction_runs_in_the_background_once_the_journal_outgrows_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let c = cache(dir.path(), 2_000);
    insert(&c, 0..10);
    c.save_now().unwrap();
    let journal = cache_path(dir.path(), "c").with_extension("journal");
    let mut next = 10;
    let mut appends = 0;
    loop {
        insert(&c, next..next + 10);
        next += 10;
        c.save_now().unwrap();
        appends += 1;
        // Returns at once when no compaction was started.
        c.compaction.wait();
        if !journal.exists() {
            break;
        }
        assert!(next < 10_000, "no compaction after {appends} appends");
    }
    assert!(appends > 5, "compacted after {appends} appends already");
    assert_eq!(reloaded(dir.path()), (0..next).collect::<Vec<_>>());
}

#[test]
fn a_clear_and_built_contents_are_saved_whole() {
    let dir = tempfile::tempdir().unwrap();
    let c = cache(dir.path(), u64::MAX);
    insert(&c, 0..5);
    c.save_now().unwrap();
    insert(&c, 5..6);
    c.save_now().unwrap();
    let journal = cache_path(dir.path(), "c").with_extension("journal");
    assert!(journal.exists());
    on_maps!(c, s, _now => s.clear());
    c.cleared.store(true, Ordering::Release);
    insert(&c, 7..8);
    c.save_now().unwrap();
    assert!(!journal.exists(), "a clear was appended, not saved whole");
    assert_eq!(reloaded(dir.path()), vec![7]);
}
