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

/// The save lock (`<cache>.lock`) between real processes: a save waits for another process's
/// save to finish, and a holder killed with SIGKILL lets the waiting save go on. A `hold`
/// process stops in the middle of its save, under the lock; whether the other process waits on
/// the lock is read from the kernel's list of file locks (Linux only).
#[cfg(target_os = "linux")]
mod save_lock {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, Command, Stdio};

    use super::WRITER;
    use tests::child::{self, Lines};

    struct Process {
        child: Child,
        lines: Lines,
    }

    impl Process {
        fn start(args: &[&str]) -> Self {
            let mut child = Command::new(WRITER)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let lines = Lines::of(&mut child);
            Process { child, lines }
        }

        fn next_line(&mut self) -> String {
            self.lines.next(&mut self.child)
        }

        fn go(&mut self) {
            writeln!(self.child.stdin.as_mut().unwrap(), "go").unwrap();
        }
    }

    impl Drop for Process {
        /// A test that fails part-way must not leave its children saving into its removed
        /// directory (their errors would read as the failure).
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The flock entries of `/proc/locks` on the file `lock` (by inode) of process `pid`:
    /// `Some(true)` when it waits for the lock, `Some(false)` when it holds it.
    fn lock_state(lock: &std::path::Path, pid: u32) -> Option<bool> {
        let inode = format!(":{} ", std::fs::metadata(lock).ok()?.ino());
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        locks
            .lines()
            .filter(|line| line.contains("FLOCK") && line.contains(&inode))
            .filter(|line| {
                line.split_whitespace()
                    .any(|field| field == pid.to_string())
            })
            .map(|line| line.contains("->"))
            .next()
    }

    /// Starts a saver and a holder; returns them once the holder holds the lock in the middle
    /// of its save and the saver's save waits for it.
    fn saver_waiting_on_holder(dir: &tempfile::TempDir) -> (Process, Process) {
        let path = dir.path().to_str().unwrap();
        let lock = dir.path().join("shared/locked.lock");
        let mut saver = Process::start(&["save", path, "2"]);
        assert_eq!(saver.next_line(), "ready");
        let mut holder = Process::start(&["hold", path]);
        assert_eq!(holder.next_line(), "holding");
        // `/proc/locks` is read a page at a time, and other tests' locks coming and going
        // between two pages can hide a line for one read: ask until it shows.
        let holds = child::poll(|| lock_state(&lock, holder.child.id()).filter(|&waits| !waits));
        assert_eq!(holds, Some(false), "the holder does not hold the save lock");

        saver.go();
        let waited = child::poll(|| {
            if saver.child.try_wait().unwrap().is_some() {
                return Some(false); // saved (or failed) while the lock was held
            }
            lock_state(&lock, saver.child.id()).filter(|&waits| waits)
        });
        assert_eq!(
            waited,
            Some(true),
            "the second save did not wait for the lock the first one held"
        );
        (saver, holder)
    }

    /// The keys the file holds (read by the helper, which knows the value type).
    fn saved_keys(dir: &tempfile::TempDir) -> Vec<u64> {
        let out = child::output(Command::new(WRITER).args(["keys", dir.path().to_str().unwrap()]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let keys = String::from_utf8(out.stdout).unwrap();
        keys.lines().map(|key| key.parse().unwrap()).collect()
    }

    #[test]
    fn a_save_waits_for_another_process_s_save_to_finish() {
        let dir = tempfile::tempdir().unwrap();
        let (mut saver, mut holder) = saver_waiting_on_holder(&dir);
        holder.go();
        assert_eq!(holder.next_line(), "saved");
        assert_eq!(saver.next_line(), "saved");
        assert!(child::wait(&mut holder.child, "the holder").success());
        assert!(child::wait(&mut saver.child, "the saver").success());
        // The second save came after the first and merged its entry.
        assert_eq!(saved_keys(&dir), vec![2, u64::MAX]);
    }

    #[test]
    fn a_holder_killed_with_sigkill_frees_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (mut saver, mut holder) = saver_waiting_on_holder(&dir);
        holder.child.kill().unwrap();
        let status = child::wait(&mut holder.child, "the killed holder");
        assert_eq!(status.signal(), Some(9));
        assert_eq!(saver.next_line(), "saved");
        assert!(child::wait(&mut saver.child, "the saver").success());
        assert_eq!(saved_keys(&dir), vec![2], "the killed save was completed");
        let temporaries = std::fs::read_dir(dir.path().join("shared"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
            .count();
        assert_eq!(temporaries, 0, "the killed save's temporary file was left");
    }
}
