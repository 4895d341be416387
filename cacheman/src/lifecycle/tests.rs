//! Saves that fail half-way (a full disk, a refused write, a failed fsync) keep the old file
//! and the unsaved changes.

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::*;
use crate::options::CacheOptions;
use crate::store::files::cache_path;
use crate::store::{Codec, FileStore, Identity};

/// A cache whose every save fails with `errno` half-way through while `failing` is set.
fn cache_with_faulty_disk(
    dir: &std::path::Path,
    failing: Arc<AtomicBool>,
    errno: i32,
) -> CacheInner<u64, String> {
    cache_with_faulty_disk_on(dir, failing, errno, Arc::new(crate::SystemClock))
}

fn cache_with_faulty_disk_on(
    dir: &std::path::Path,
    failing: Arc<AtomicBool>,
    errno: i32,
    clock: Arc<dyn crate::Clock>,
) -> CacheInner<u64, String> {
    let identity = Identity::new::<u64, String>(Codec::Postcard, 0, false);
    let store = FileStore::new("c", cache_path(dir, "c"), identity).with_fault(move |so_far| {
        if so_far > 0 && failing.load(Ordering::SeqCst) {
            Err(io::Error::from_raw_os_error(errno))
        } else {
            Ok(())
        }
    });
    let inner = CacheInner::new(
        "c",
        CacheOptions::new(),
        clock,
        Hooks::default(),
        Some(Box::new(store)),
    );
    inner.load_or_build(true).unwrap();
    inner
}

fn insert(cache: &CacheInner<u64, String>, key: u64) {
    on_maps!(cache, s, now => s.insert(key, format!("value {key}"), now));
    cache.note_changes(1);
}

#[test]
fn disk_full_or_permission_denied_keeps_the_old_files_and_the_changes() {
    for errno in [28 /* ENOSPC */, 13 /* EACCES */] {
        let dir = tempfile::tempdir().unwrap();
        let failing = Arc::new(AtomicBool::new(false));
        let cache = cache_with_faulty_disk(dir.path(), Arc::clone(&failing), errno);
        insert(&cache, 1);
        cache.save_now().unwrap(); // a snapshot
        insert(&cache, 2);
        cache.save_now().unwrap(); // a frame in the journal
        let path = cache_path(dir.path(), "c");
        let journal = path.with_extension("journal");
        let good_files = || {
            (
                std::fs::read(&path).unwrap(),
                std::fs::read(&journal).unwrap(),
            )
        };
        let good = good_files();

        failing.store(true, Ordering::SeqCst);
        insert(&cache, 3);
        // An append that fails, and a whole snapshot (a compaction) that fails.
        for (attempt, action, file) in [
            (
                CacheInner::save_now as fn(&_) -> _,
                "append to the journal",
                &journal,
            ),
            (CacheInner::compact_now, "write the cache file", &path),
        ] {
            let text = attempt(&cache).unwrap_err().to_string();
            assert!(
                text.contains(&format!("could not {action} for cache `c`")),
                "{text}"
            );
            assert!(text.contains(&file.display().to_string()), "{text}");
            assert!(good_files() == good, "{action}: the old files were changed");
            assert_eq!(
                cache.changes_since_save(),
                1,
                "{action}: the change was forgotten"
            );
        }

        failing.store(false, Ordering::SeqCst);
        cache.save_now().unwrap();
        assert_eq!(cache.changes_since_save(), 0);
        cache.load_or_build(true).unwrap();
        assert_eq!(cache.snapshot_rows().len(), 3, "errno {errno}");
    }
}

#[test]
fn a_failed_fsync_keeps_the_old_file_and_the_changes() {
    use crate::store::files::Step;
    let dir = tempfile::tempdir().unwrap();
    let failing = Arc::new(AtomicBool::new(false));
    let fsync_fails = Arc::clone(&failing);
    let identity = Identity::new::<u64, String>(Codec::Postcard, 0, false);
    let store =
        FileStore::new("c", cache_path(dir.path(), "c"), identity).with_steps(move |step| {
            match step {
                Step::SyncFile(_) if fsync_fails.load(Ordering::SeqCst) => {
                    Err(io::Error::from_raw_os_error(5)) // EIO
                }
                _ => Ok(()),
            }
        });
    let cache = CacheInner::new(
        "c",
        CacheOptions::new(),
        Arc::new(crate::SystemClock),
        Hooks::default(),
        Some(Box::new(store)),
    );
    insert(&cache, 1);
    cache.save_now().unwrap();
    let good_file = std::fs::read(cache_path(dir.path(), "c")).unwrap();

    failing.store(true, Ordering::SeqCst);
    insert(&cache, 2);
    assert!(cache.save_now().is_err());
    let now = std::fs::read(cache_path(dir.path(), "c")).unwrap();
    assert_eq!(now, good_file, "the old file was replaced");
    assert_eq!(
        cache.changes_since_save(),
        1,
        "the unsaved change was forgotten"
    );
    failing.store(false, Ordering::SeqCst);
    cache.save_now().unwrap();
    cache.load_or_build(true).unwrap();
    assert_eq!(cache.snapshot_rows().len(), 2);
}

#[test]
fn a_failed_automatic_save_keeps_the_old_file_and_retries_after_the_delay() {
    use crate::autosync::save_if_due;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let failing = Arc::new(AtomicBool::new(false));
    let clock = crate::ManualClock::new();
    let cache = cache_with_faulty_disk_on(
        dir.path(),
        Arc::clone(&failing),
        28, /* ENOSPC */
        Arc::new(clock.clone()),
    );
    insert(&cache, 1);
    clock.advance(Duration::from_secs(900));
    assert!(matches!(save_if_due(&cache), Some(Ok(()))));
    let path = cache_path(dir.path(), "c");
    let good_file = std::fs::read(&path).unwrap();

    failing.store(true, Ordering::SeqCst);
    insert(&cache, 2);
    clock.advance(Duration::from_secs(900));
    assert!(matches!(save_if_due(&cache), Some(Err(_))));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        good_file,
        "the old file was damaged"
    );
    assert_eq!(cache.changes_since_save(), 1);
    clock.advance(Duration::from_secs(4));
    assert!(save_if_due(&cache).is_none(), "retried before the delay");

    failing.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(1));
    assert!(matches!(save_if_due(&cache), Some(Ok(()))));
    assert_eq!(cache.changes_since_save(), 0);
    cache.load_or_build(true).unwrap();
    assert_eq!(cache.snapshot_rows().len(), 2);
}
