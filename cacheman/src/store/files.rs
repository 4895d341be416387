//! Where cache files live and how they are written: private directories, validated names, and
//! the atomic write (temporary file, fsync, rename, directory fsync).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};

/// Extension of a cache file.
pub(crate) const CACHE_EXTENSION: &str = "cache";

/// Checks `name` against the one name rule (`crate::names`), so that it is one portable file
/// name inside the manager's directory, and nothing else.
pub(crate) fn check_name(kind: &'static str, name: &str) -> Result<(), crate::Error> {
    match crate::names::name_problem(name) {
        Some(problem) => Err(crate::Error::InvalidName {
            kind,
            name: name.to_owned(),
            reason: problem.reason(),
        }),
        None => Ok(()),
    }
}

/// The file of cache `name` in `dir`. `name` must have passed [`check_name`].
pub(crate) fn cache_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.{CACHE_EXTENSION}"))
}

/// Creates `dir` and its missing parents, readable by the owner only (mode 0700 on Unix).
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// A step of writing a cache file, as a test's hook sees it just before it happens.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum Step<'a> {
    /// A write into the temporary file at this offset.
    Write(u64),
    /// The fsync of the temporary file, which holds the whole new file by then.
    SyncFile(&'a File),
    /// The rename of the temporary file over the cache file.
    Rename { from: &'a Path, to: &'a Path },
    /// The fsync of the directory, which makes the rename durable.
    SyncDir(&'a Path),
}

/// A test's hook into a save: called before each step with that step; an error it returns is
/// the error of that step (disk full, I/O error, a failed fsync). A test records the steps to
/// check their order (docs/PROMISES.md, "Power loss"). Always `None` outside tests.
pub(crate) type Fault = dyn Fn(Step<'_>) -> io::Result<()> + Send + Sync;

/// Asks `fault`, if any, whether `step` may go ahead.
pub(crate) fn check(fault: Option<&Fault>, step: Step<'_>) -> io::Result<()> {
    fault.map_or(Ok(()), |fault| fault(step))
}

/// Replaces `path` with `chunks` so that a crash at any instant leaves either the old file or the
/// new one, never a mix (see [`TempFile`]).
pub(crate) fn atomic_write(path: &Path, chunks: &[&[u8]], fault: Option<&Fault>) -> io::Result<()> {
    let mut temp = TempFile::beside(path)?;
    let mut so_far = 0u64;
    for chunk in chunks {
        check(fault, Step::Write(so_far))?;
        temp.file().write_all(chunk)?;
        so_far += chunk.len() as u64;
    }
    temp.commit(path, fault)
}

/// Replaces `path` with `chunks` by a rename, without fsync: for advisory files (the manifest)
/// whose loss in a power cut costs nothing but what they report, where two fsyncs would add
/// milliseconds to every save. A crash leaves the old file or the new one (or, after a power
/// cut on some file systems, an empty one, which readers treat as unreadable and replace).
pub(crate) fn replace_unsynced(path: &Path, chunks: &[&[u8]]) -> io::Result<()> {
    let mut temp = TempFile::beside(path)?;
    for chunk in chunks {
        temp.file().write_all(chunk)?;
    }
    drop(temp.file.take());
    if let Err(err) = fs::rename(&temp.path, path) {
        let _ = fs::remove_file(&temp.path);
        return Err(err);
    }
    Ok(())
}

/// A file written beside the one it will replace, and removed when dropped uncommitted.
///
/// It sits in the same directory (a rename is only atomic within one file system) and is
/// created exclusively, so an attacker's symlink there is never followed. [`TempFile::commit`]
/// fsyncs it before the rename and the directory after, so the rename itself is durable: a
/// crash at any instant leaves the old file or the new one.
pub(crate) struct TempFile {
    path: PathBuf,
    /// `None` once committed.
    file: Option<File>,
}

impl TempFile {
    /// A new, empty temporary file for `path`, open for reading and writing, and locked
    /// (`File::lock`, an `flock` on Unix) until it is committed or dropped: other processes'
    /// clean-up of orphans ([`remove_orphan_temps`]) leaves it alone while this process lives.
    pub(crate) fn beside(path: &Path) -> io::Result<Self> {
        let (path, file) = create_temp_beside(path)?;
        if let Err(err) = file.try_lock() {
            // Nobody else can have locked a file created a moment ago: locks are not
            // supported here. Saves hold the save lock throughout, so only a background
            // compaction's file can then be taken for an orphan; that compaction fails at
            // its rename, and the journal it was to replace stays.
            log::debug!(
                "cacheman: could not lock the temporary file {}: {err}",
                path.display()
            );
        }
        Ok(TempFile {
            path,
            file: Some(file),
        })
    }

    pub(crate) fn file(&mut self) -> &mut File {
        // `file` is only taken by `commit`, which consumes the temporary file.
        self.file
            .as_mut()
            .expect("an uncommitted temporary file is open")
    }

    /// Makes this file `target`: fsync, close, rename over `target`, fsync the directory. A
    /// large file it replaces is let go of on a thread of its own (see [`Replaced`]). `fault`
    /// sees each of these steps first (tests only).
    pub(crate) fn commit(self, target: &Path, fault: Option<&Fault>) -> io::Result<()> {
        self.commit_releasing(target, RELEASE_APART_FROM, fault)
            .map(drop)
    }

    /// [`TempFile::commit`], letting go of a replaced file of at least `apart_from` bytes on
    /// a thread of its own, whose handle it returns.
    fn commit_releasing(
        mut self,
        target: &Path,
        apart_from: u64,
        fault: Option<&Fault>,
    ) -> io::Result<Option<JoinHandle<()>>> {
        let dir = target.parent().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "cache path has no directory")
        })?;
        // On an error here, dropping `self` removes the file.
        check(fault, Step::SyncFile(self.file()))?;
        self.file().sync_all()?;
        // Closed before the rename: Windows renames no open file.
        drop(self.file.take());
        let replaced = Replaced::hold(target, apart_from);
        let renamed = check(
            fault,
            Step::Rename {
                from: &self.path,
                to: target,
            },
        )
        .and_then(|()| fs::rename(&self.path, target));
        if let Err(err) = renamed {
            // Best effort: the temporary file is ours and useless now.
            let _ = fs::remove_file(&self.path);
            return Err(err);
        }
        check(fault, Step::SyncDir(dir))?;
        sync_dir(dir)?;
        Ok(replaced.release())
    }
}

/// Replaced files at least this large are let go of apart from the save. Freeing a file's
/// cached pages takes about 0.2 ms per MiB here (20 ms for a 104 MB file), starting a thread
/// about 0.05 ms.
const RELEASE_APART_FROM: u64 = 8 << 20;

/// The file a rename replaces, held open across the rename when large (Unix only). The rename
/// then only drops a name: the file's pages and blocks are freed when its last descriptor
/// closes, and [`Replaced::release`] closes it on a thread of its own, so the save returns
/// without waiting for that. The file has no name by then: a crash before the close leaves
/// nothing behind (the file system frees unnamed files when they close or at its next mount).
struct Replaced(Option<File>);

impl Replaced {
    fn hold(target: &Path, apart_from: u64) -> Self {
        #[cfg(unix)]
        {
            let large = |file: &File| file.metadata().is_ok_and(|m| m.len() >= apart_from);
            Replaced(File::open(target).ok().filter(large))
        }
        #[cfg(not(unix))]
        {
            // Windows renames over no open file.
            let _ = (target, apart_from);
            Replaced(None)
        }
    }

    /// Closes the held file on a `cacheman-release` thread; the handle, for tests to join.
    fn release(self) -> Option<JoinHandle<()>> {
        let file = self.0?;
        // A failed spawn drops the closure, and with it the file, here.
        thread::Builder::new()
            .name("cacheman-release".into())
            .spawn(move || drop(file))
            .ok()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Best effort: a failed save's half-written file; the next save's cleanup (under
            // the save lock) removes what this leaves.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// An exclusive lock on `<dir>/<name>.lock`, held while one process saves one cache. Released
/// when dropped (and by the OS if the process dies).
pub(crate) struct SaveLock {
    _file: File,
}

/// Takes the save lock beside `path` (the cache file), waiting for another process to finish.
pub(crate) fn lock_beside(path: &Path) -> io::Result<SaveLock> {
    let lock_path = path.with_extension("lock");
    // The directory is private (0700), so nobody else can plant a symlink here; refusing one
    // anyway costs nothing.
    if fs::symlink_metadata(&lock_path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is a symlink", lock_path.display()),
        ));
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(&lock_path)?;
    file.lock()?;
    Ok(SaveLock { _file: file })
}

/// Removes temporary files that a crashed save left beside `path`. Call with the save lock
/// held. Every temporary file is locked by its writer (an `flock` on the file itself, see
/// [`TempFile::beside`]) until it is renamed or removed, and the OS lets go of that lock when
/// the writer dies: a temporary file whose lock can be taken is an orphan, one whose lock
/// cannot is being written (a background compaction writes its snapshot without the save
/// lock). Returns how many were removed.
pub(crate) fn remove_orphan_temps(path: &Path, _held: &SaveLock) -> usize {
    let (Some(dir), prefix) = (path.parent(), temp_prefix(path)) else {
        return 0;
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| is_orphan(&e.path()))
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

/// Whether nobody holds the lock of the temporary file at `path` (see [`TempFile::beside`]):
/// its writer is gone. A file that cannot be opened is not ours to judge, and stays; where
/// locks are not supported, every temporary file is taken for an orphan, as before locks.
pub(crate) fn is_orphan(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    // A lock taken here is released when `file` closes, before the removal.
    !matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock))
}

/// Makes a rename or removal in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        match File::open(dir).and_then(|d| d.sync_all()) {
            // Some file systems cannot fsync a directory; SQLite ignores this too.
            Err(err) if err.raw_os_error() == Some(22) => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Prefix of the temporary files written beside `path`.
pub(crate) fn temp_prefix(path: &Path) -> String {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    format!(".{file_name}.tmp.")
}

fn create_temp_beside(path: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let prefix = temp_prefix(path);
    loop {
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp_path = dir.join(format!("{prefix}{}.{unique}", std::process::id()));
        let mut options = OpenOptions::new();
        // create_new is O_CREAT|O_EXCL: it fails on any existing entry, symlinks included.
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&tmp_path) {
            Ok(file) => return Ok((tmp_path, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
}

/// Removes a file, treating "already gone" as success, and makes the removal durable.
pub(crate) fn remove_file_durably(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(path.parent().unwrap_or(Path::new("."))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_leave_the_directory_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "nul\0",
            "tab\t",
            "a:b",
            "a b",
            "ünïcode",
            "con",
        ] {
            assert!(check_name("cache", bad).is_err(), "{bad:?} accepted");
        }
        for good in ["root", "edge-2", "my_cache.v1"] {
            assert!(check_name("cache", good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), "c");
        atomic_write(&path, &[b"old"], None).unwrap();
        atomic_write(&path, &[b"ne", b"w"], None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("c.cache")]);
    }

    /// Files of `dir` still open in this process although no longer named (Linux lists them in
    /// `/proc/self/fd` as "<path> (deleted)").
    #[cfg(target_os = "linux")]
    fn unnamed_but_open(dir: &Path) -> usize {
        let dir = dir.to_string_lossy().into_owned();
        fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|fd| fs::read_link(fd.path()).ok())
            .map(|target| target.to_string_lossy().into_owned())
            .filter(|target| target.starts_with(&dir) && target.ends_with(" (deleted)"))
            .count()
    }

    #[test]
    fn a_large_replaced_file_is_released_on_its_own_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), "c");
        atomic_write(&path, &[&[1u8; 4096]], None).unwrap();
        let mut temp = TempFile::beside(&path).unwrap();
        temp.file().write_all(b"new").unwrap();
        let release = temp.commit_releasing(&path, 4096, None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        #[cfg(unix)]
        {
            let release = release.expect("a file of 4096 bytes is released apart");
            release.join().unwrap();
            // Closed by the thread: no descriptor leaks.
            #[cfg(target_os = "linux")]
            assert_eq!(unnamed_but_open(dir.path()), 0);
        }
        #[cfg(not(unix))]
        assert!(release.is_none());
    }

    #[test]
    fn small_or_missing_replaced_files_are_released_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), "c");
        for contents in [&b"first"[..], b"second", b"third"] {
            let mut temp = TempFile::beside(&path).unwrap();
            temp.file().write_all(contents).unwrap();
            // The first commit replaces nothing, the next ones a 5- or 6-byte file.
            assert!(temp.commit_releasing(&path, 4096, None).unwrap().is_none());
            assert_eq!(fs::read(&path).unwrap(), contents);
        }
        #[cfg(target_os = "linux")]
        assert_eq!(unnamed_but_open(dir.path()), 0);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        create_private_dir(&sub).unwrap();
        let mode = fs::metadata(&sub).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = cache_path(&sub, "c");
        atomic_write(&path, &[b"x"], None).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let path = cache_path(dir.path(), "c");
        // Plant symlinks at the next few temporary names this process would pick.
        let next = {
            let probe = create_temp_beside(&path).unwrap();
            fs::remove_file(&probe.0).unwrap();
            probe.0
        };
        let name = next.file_name().unwrap().to_string_lossy().into_owned();
        let (stem, counter) = name.rsplit_once('.').unwrap();
        let counter: u64 = counter.parse().unwrap();
        for k in 1..50 {
            std::os::unix::fs::symlink(&victim, dir.path().join(format!("{stem}.{}", counter + k)))
                .unwrap();
        }
        atomic_write(&path, &[b"cache bytes"], None).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(&path).unwrap(), b"cache bytes");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), "c");
        atomic_write(&path, &[b"old contents"], None).unwrap();
        let disk_full = |step: Step<'_>| match step {
            Step::Write(so_far) if so_far > 0 => Err(io::Error::from_raw_os_error(28)), // ENOSPC
            _ => Ok(()),
        };
        let err = atomic_write(&path, &[b"new ", b"contents"], Some(&disk_full)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28));
        assert_eq!(fs::read(&path).unwrap(), b"old contents");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_temporary_being_written_survives_the_clean_up_of_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), "c");
        let live = TempFile::beside(&path).unwrap();
        // What a writer killed mid-save leaves: a file nobody holds a lock on.
        fs::write(dir.path().join(".c.cache.tmp.99.7"), b"half a save").unwrap();
        let lock = lock_beside(&path).unwrap();
        assert_eq!(remove_orphan_temps(&path, &lock), 1);
        assert!(live.path.exists(), "a file still being written was removed");
        let written = live.path.clone();
        drop(live);
        assert!(!written.exists());
    }

    #[test]
    fn orphaned_temporaries_are_removed_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), "c");
        let other = cache_path(dir.path(), "other");
        for orphan in [
            ".c.cache.tmp.1.0",
            ".c.cache.tmp.99.7",
            ".other.cache.tmp.1.0",
        ] {
            fs::write(dir.path().join(orphan), b"half a save").unwrap();
        }
        let lock = lock_beside(&path).unwrap();
        assert_eq!(remove_orphan_temps(&path, &lock), 2);
        assert!(dir.path().join(".other.cache.tmp.1.0").exists());
        drop(lock);
        let lock = lock_beside(&other).unwrap();
        assert_eq!(remove_orphan_temps(&other, &lock), 1);
    }
}
