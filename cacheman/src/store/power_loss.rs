//! Tests of what a save does for a power loss (docs/PROMISES.md, "Power loss"): the file is
//! whole and fsynced before its rename, the directory fsynced after it, and a failed step
//! leaves the old file. A recording hook ([`Step`]) sees each step before it happens and
//! reads the files at that instant; removing either fsync or moving the rename before the
//! fsync fails these tests.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::files::{CACHE_EXTENSION, Step, atomic_write, cache_path};
use super::{Codec, FileStore, Identity, Outgoing, Rows, Store};
use crate::Error;

/// A step as a test saw it happen, with what the files held at that instant.
#[derive(Debug, PartialEq)]
enum Seen {
    Write(u64),
    /// The bytes of the file about to be fsynced.
    SyncFile(Vec<u8>),
    /// The cache file's bytes just before the rename.
    Rename {
        to: PathBuf,
        target_before: Vec<u8>,
    },
    /// The cache file's bytes just before the directory's fsync.
    SyncDir {
        dir: PathBuf,
        target_before: Vec<u8>,
    },
}

/// A hook that records every step of a save into `seen` (reading the files as it goes)
/// and fails the step `failing` picks with EIO.
fn recorder(
    seen: Arc<Mutex<Vec<Seen>>>,
    failing: impl Fn(&Seen) -> bool + Send + Sync + 'static,
) -> impl Fn(Step<'_>) -> io::Result<()> + Send + Sync + 'static {
    use std::io::{Read, Seek};
    move |step| {
        let target = |path: &Path| fs::read(path).unwrap_or_default();
        let event = match step {
            Step::Write(at) => Seen::Write(at),
            Step::SyncFile(mut file) => {
                let mut bytes = Vec::new();
                file.rewind()?;
                file.read_to_end(&mut bytes)?;
                Seen::SyncFile(bytes)
            }
            Step::Rename { from, to } => {
                assert_eq!(from.parent(), to.parent(), "renamed across directories");
                assert!(from.exists(), "the file to rename is gone");
                Seen::Rename {
                    to: to.to_owned(),
                    target_before: target(to),
                }
            }
            Step::SyncDir(dir) => Seen::SyncDir {
                dir: dir.to_owned(),
                target_before: fs::read_dir(dir)?
                    .flatten()
                    .find(|e| e.path().extension().is_some_and(|x| x == CACHE_EXTENSION))
                    .map_or_else(Vec::new, |e| target(&e.path())),
            },
        };
        let fail = failing(&event);
        seen.lock().unwrap().push(event);
        match fail {
            true => Err(io::Error::from_raw_os_error(5)), // EIO
            false => Ok(()),
        }
    }
}

#[test]
fn a_save_writes_then_fsyncs_then_renames_then_fsyncs_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = cache_path(dir.path(), "c");
    atomic_write(&path, &[b"old"], None).unwrap();
    let seen = Arc::default();
    let hook = recorder(Arc::clone(&seen), |_| false);
    atomic_write(&path, &[b"new ", b"contents"], Some(&hook)).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            Seen::Write(0),
            Seen::Write(4),
            // Everything is written before the fsync, and fsynced before the rename; the
            // directory is fsynced after it.
            Seen::SyncFile(b"new contents".to_vec()),
            Seen::Rename {
                to: path.clone(),
                target_before: b"old".to_vec()
            },
            Seen::SyncDir {
                dir: dir.path().to_owned(),
                target_before: b"new contents".to_vec()
            },
        ]
    );
}

#[test]
fn a_failed_fsync_or_rename_leaves_the_old_file_and_no_temporary() {
    fn at_fsync(seen: &Seen) -> bool {
        matches!(seen, Seen::SyncFile(_))
    }
    fn at_rename(seen: &Seen) -> bool {
        matches!(seen, Seen::Rename { .. })
    }
    for (what, failing) in [
        ("fsync", at_fsync as fn(&Seen) -> bool),
        ("rename", at_rename),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), "c");
        atomic_write(&path, &[b"old"], None).unwrap();
        let seen = Arc::default();
        let hook = recorder(Arc::clone(&seen), failing);
        let err = atomic_write(&path, &[b"new"], Some(&hook)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(5), "{what}");
        assert_eq!(fs::read(&path).unwrap(), b"old", "{what}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "{what}");
        // Nothing after the failed step.
        assert!(failing(seen.lock().unwrap().last().unwrap()), "{what}");
    }
}

#[test]
fn a_failed_directory_fsync_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = cache_path(dir.path(), "c");
    let seen = Arc::default();
    let hook = recorder(seen, |seen| matches!(seen, Seen::SyncDir { .. }));
    // The new file is in place but not known to be durable: the caller keeps its changes.
    let err = atomic_write(&path, &[b"new"], Some(&hook)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5));
}

fn plain(rows: Vec<(String, u32, u64)>) -> Outgoing<String, u32> {
    Outgoing {
        rows: Rows::Decoded(crate::shards::stamped_rows(rows)),
        epoch: 0,
        journal: None,
    }
}

fn store(dir: &Path) -> FileStore<String, u32> {
    let identity = Identity::new::<String, u32>(Codec::Postcard, 7, false);
    FileStore::new("c", cache_path(dir, "c"), identity)
}

#[test]
fn a_save_is_whole_and_fsynced_before_its_rename_and_the_directory_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = cache_path(dir.path(), "c");
    let seen = Arc::default();
    let s = store(dir.path()).with_steps(recorder(Arc::clone(&seen), |_| false));
    s.save(plain(vec![("a".into(), 1, 0)])).unwrap();
    let old = fs::read(&path).unwrap();
    seen.lock().unwrap().clear();
    s.save(plain(vec![("a".into(), 1, 0), ("b".into(), 2, 0)]))
        .unwrap();
    let new = fs::read(&path).unwrap();
    assert_ne!(old, new);
    // The payload, then the header in front, then fsync, rename, directory fsync.
    let seen = seen.lock().unwrap();
    let (writes, commit) = seen.split_at(seen.len() - 3);
    assert!(matches!(writes, [.., Seen::Write(0)]), "{seen:?}");
    assert_eq!(
        commit,
        [
            Seen::SyncFile(new.clone()),
            Seen::Rename {
                to: path,
                target_before: old
            },
            Seen::SyncDir {
                dir: dir.path().to_owned(),
                target_before: new
            },
        ]
    );
}

#[test]
fn a_failed_fsync_fails_the_save_and_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = cache_path(dir.path(), "c");
    let failing = |seen: &Seen| matches!(seen, Seen::SyncFile(_));
    let s = store(dir.path()).with_steps(recorder(Arc::default(), failing));
    store(dir.path())
        .save(plain(vec![("a".into(), 1, 0)]))
        .unwrap();
    let old = fs::read(&path).unwrap();
    let err = s.save(plain(vec![("b".into(), 2, 0)])).err().unwrap();
    assert!(matches!(&err, Error::Io { source, .. } if source.raw_os_error() == Some(5)));
    assert_eq!(fs::read(&path).unwrap(), old);
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        2,
        "c.cache, c.lock"
    );
}

#[test]
fn an_append_writes_then_fsyncs_its_frame_and_syncs_the_directory_only_for_a_new_journal() {
    let dir = tempfile::tempdir().unwrap();
    let journal = cache_path(dir.path(), "c").with_extension("journal");
    let seen = Arc::default();
    let s = store(dir.path()).with_steps(recorder(Arc::clone(&seen), |_| false));
    s.save(plain(vec![("a".into(), 1, 0)])).unwrap();
    let append = |key: &str| {
        seen.lock().unwrap().clear();
        let changes = super::Changes {
            rows: vec![(key.to_string(), 2, crate::shards::RowMeta::default())],
            removed: vec![],
            epoch: 0,
        };
        assert!(s.append(changes).unwrap().is_some());
        std::mem::take(&mut *seen.lock().unwrap())
    };
    // The first append starts the journal: its header is put in place as a save's file is.
    let mut steps = append("b");
    let after = fs::read(&journal).unwrap();
    let header = after[..super::journal::HEADER_LEN as usize].to_vec();
    // (The recorder reads the cache file at a directory's fsync: not this test's concern.)
    if let Some(Seen::SyncDir { target_before, .. }) = steps.get_mut(3) {
        *target_before = header.clone();
    }
    assert_eq!(
        steps,
        [
            Seen::Write(0),
            Seen::SyncFile(header.clone()),
            Seen::Rename {
                to: journal.clone(),
                target_before: Vec::new()
            },
            Seen::SyncDir {
                dir: dir.path().to_owned(),
                target_before: header.clone()
            },
            Seen::Write(header.len() as u64),
            Seen::SyncFile(after.clone()),
        ]
    );
    // Later ones: one write at the end, one fsync of the whole frame; no rename, no
    // directory fsync.
    let steps = append("c");
    assert_eq!(
        steps,
        [
            Seen::Write(after.len() as u64),
            Seen::SyncFile(fs::read(&journal).unwrap()),
        ]
    );
}
