//! Merging a save with what other processes saved to the same file since this process last
//! read or wrote it: this process's changes since then win, entries it never touched are kept,
//! and an invalidation (a higher epoch on disk) wins over everything held from before it.

use crate::shards::RowMeta;
use std::collections::HashSet;
use std::fs::Metadata;
use std::hash::Hash;
use std::time::SystemTime;

/// Keys changed since the last sync with the file.
pub(crate) struct Journal<K> {
    pub touched: Vec<K>,
    /// The whole contents were replaced (cleared) since the last sync.
    pub cleared: bool,
    /// Rows stamped before this are past their removal age (memory drops them on sight), so
    /// a merge does not write them either; 0 when entries do not expire.
    pub dropped_before: u64,
}

/// What the cache must take into memory after a save.
pub(crate) enum Merged<K, V> {
    /// The file now holds exactly the snapshot.
    Written,
    /// Another process saved entries for keys untouched here (`rows`) and removed others
    /// (`gone`); the file holds the union.
    Adopt {
        rows: Vec<(K, V, RowMeta)>,
        gone: Vec<K>,
    },
    /// Another process invalidated the cache: everything held from before is dropped and memory
    /// becomes `rows` (what was saved after the invalidation), at `epoch`.
    Invalidated {
        epoch: u64,
        rows: Vec<(K, V, RowMeta)>,
    },
    /// Another process rewrote the whole contents (a compaction) since the last sync, and an
    /// append put this save's changes after it: memory becomes `rows` except for the keys
    /// this save carried (and keys changed since), which stay as they are.
    Resync { rows: Vec<(K, V, RowMeta)> },
}

/// Enough of a file's metadata to tell whether someone replaced it since we looked. Every save
/// renames a new file into place, so the inode changes even when size and time do not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: (u64, u64),
}

impl FileStamp {
    /// The file's size in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        let inode = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let inode = (0, 0);
        FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

/// The rows to write, their epoch, and what memory must adopt.
pub(crate) type Outcome<K, V> = (Vec<(K, V, RowMeta)>, u64, Merged<K, V>);

/// Merges `ours` (the snapshot, at `our_epoch`, with its journal) with the `disk` rows saved by
/// another process at `disk_epoch`.
pub(crate) fn merge<K, V>(
    ours: Vec<(K, V, RowMeta)>,
    our_epoch: u64,
    journal: Journal<K>,
    disk: Vec<(K, V, RowMeta)>,
    disk_epoch: u64,
) -> Outcome<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    if disk_epoch > our_epoch {
        // Invalidated elsewhere: what we hold may derive from the invalidated data.
        let adopt = disk.clone();
        return (
            disk,
            disk_epoch,
            Merged::Invalidated {
                epoch: disk_epoch,
                rows: adopt,
            },
        );
    }
    if our_epoch > disk_epoch || journal.cleared {
        // We invalidated or cleared since the last sync: the disk holds only older contents.
        return (ours, our_epoch, Merged::Written);
    }
    let touched: HashSet<K> = journal.touched.into_iter().collect();
    let cutoff = journal.dropped_before;
    // Another process's rows that memory would drop at once are not written back either.
    let disk: Vec<(K, V, RowMeta)> = disk
        .into_iter()
        .filter(|(_, _, row)| row.stamp_ms == 0 || row.stamp_ms >= cutoff)
        .collect();
    let disk_keys: HashSet<K> = disk.iter().map(|(k, _, _)| k.clone()).collect();
    let gone: Vec<K> = ours
        .iter()
        .filter(|(k, _, _)| !touched.contains(k) && !disk_keys.contains(k))
        .map(|(k, _, _)| k.clone())
        .collect();
    let theirs: Vec<(K, V, RowMeta)> = disk
        .into_iter()
        .filter(|(k, _, _)| !touched.contains(k))
        .collect();
    let mut rows: Vec<(K, V, RowMeta)> = ours
        .into_iter()
        .filter(|(k, _, _)| touched.contains(k))
        .collect();
    rows.extend(theirs.iter().cloned());
    (rows, our_epoch, Merged::Adopt { rows: theirs, gone })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shards::stamped_rows as at;

    fn rows(pairs: &[(u32, u32)]) -> Vec<(u32, u32, RowMeta)> {
        pairs
            .iter()
            .map(|&(k, v)| (k, v, RowMeta::default()))
            .collect()
    }

    fn sorted(mut rows: Vec<(u32, u32, RowMeta)>) -> Vec<(u32, u32, RowMeta)> {
        rows.sort();
        rows
    }

    fn journal(touched: &[u32]) -> Journal<u32> {
        Journal {
            touched: touched.to_vec(),
            cleared: false,
            dropped_before: 0,
        }
    }

    #[test]
    fn our_changes_win_and_untouched_entries_are_kept() {
        // We loaded {1: 1, 2: 2}, then set 1 = 10, added 3, removed 2.
        let ours = rows(&[(1, 10), (3, 3)]);
        // Meanwhile another process set 1 = 100, 2 = 200 and added 4.
        let disk = rows(&[(1, 100), (2, 200), (4, 4)]);
        let (written, epoch, merged) = merge(ours, 0, journal(&[1, 2, 3]), disk, 0);
        assert_eq!(sorted(written), rows(&[(1, 10), (3, 3), (4, 4)]));
        assert_eq!(epoch, 0);
        let Merged::Adopt { rows: adopt, gone } = merged else {
            panic!("expected Adopt")
        };
        assert_eq!(sorted(adopt), rows(&[(4, 4)]));
        assert!(gone.is_empty());
    }

    #[test]
    fn entries_another_process_removed_are_dropped_unless_we_touched_them() {
        let ours = rows(&[(1, 1), (2, 2)]);
        let disk = rows(&[]);
        let (written, _, merged) = merge(ours, 0, journal(&[2]), disk, 0);
        assert_eq!(written, rows(&[(2, 2)]));
        let Merged::Adopt { gone, .. } = merged else {
            panic!("expected Adopt")
        };
        assert_eq!(gone, vec![1]);
    }

    #[test]
    fn rows_of_another_process_past_their_removal_age_are_not_written() {
        let ours = at(vec![(1, 1, 500)]);
        let disk = at(vec![(1, 1, 500), (2, 2, 90), (3, 3, 100)]);
        let journal = Journal {
            touched: vec![],
            cleared: false,
            dropped_before: 100,
        };
        let (written, _, merged) = merge(ours, 0, journal, disk, 0);
        assert_eq!(sorted(written), at(vec![(1, 1, 500), (3, 3, 100)]));
        let Merged::Adopt { rows: adopt, .. } = merged else {
            panic!("expected Adopt")
        };
        assert_eq!(sorted(adopt), at(vec![(1, 1, 500), (3, 3, 100)]));
    }

    #[test]
    fn a_higher_epoch_on_disk_drops_everything_we_held() {
        let ours = rows(&[(1, 1), (2, 2)]);
        let disk = rows(&[(9, 9)]);
        let (written, epoch, merged) = merge(ours, 3, journal(&[1]), disk, 7);
        assert_eq!((written, epoch), (rows(&[(9, 9)]), 7));
        assert!(matches!(merged, Merged::Invalidated { epoch: 7, .. }));
    }

    #[test]
    fn our_own_invalidation_or_clear_wins_over_older_disk_contents() {
        let (written, epoch, _) = merge(rows(&[(5, 5)]), 8, journal(&[5]), rows(&[(1, 1)]), 7);
        assert_eq!((written, epoch), (rows(&[(5, 5)]), 8));
        let cleared = Journal {
            touched: vec![],
            cleared: true,
            dropped_before: 0,
        };
        let (written, _, _) = merge(rows(&[]), 7, cleared, rows(&[(1, 1)]), 7);
        assert!(written.is_empty());
    }
}
