//! Where the global managers' files go when the program does not say (`default_base_dir`):
//! `$CACHEMAN_DIR`, else `$XDG_CACHE_HOME/cacheman` when it is an absolute path, else
//! `~/.cache/cacheman`; never a shared directory such as `/tmp`. Each case runs a real
//! `#[cached]` program (`cached_fib`) in a child process with its environment set as the case
//! says, every directory a fresh temporary one, and looks where the file went.

use std::path::{Path, PathBuf};
use std::process::Command;

use tests::child;

const FIB: &str = env!("CARGO_BIN_EXE_cached_fib");

/// The directories a case can point the variables at.
struct Dirs {
    _root: tempfile::TempDir,
    home: PathBuf,
    xdg: PathBuf,
    explicit: PathBuf,
    /// The child's current directory.
    cwd: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let [home, xdg, explicit, cwd] =
        ["home", "xdg", "explicit", "cwd"].map(|name| root.path().join(name));
    for dir in [&home, &xdg, &cwd] {
        std::fs::create_dir(dir).unwrap();
    }
    Dirs {
        _root: root,
        home,
        xdg,
        explicit,
        cwd,
    }
}

/// Runs `cached_fib` with `HOME` at `dirs.home`, the current directory at `dirs.cwd`, and
/// `CACHEMAN_DIR` and `XDG_CACHE_HOME` set to the given values or removed; returns every file
/// it left under the temporary directories.
fn run(dirs: &Dirs, cacheman_dir: Option<&Path>, xdg_cache_home: Option<&Path>) -> Vec<PathBuf> {
    let mut command = Command::new(FIB);
    command
        .arg("10")
        .current_dir(&dirs.cwd)
        .env("HOME", &dirs.home);
    for (var, value) in [
        ("CACHEMAN_DIR", cacheman_dir),
        ("XDG_CACHE_HOME", xdg_cache_home),
    ] {
        match value {
            Some(value) => command.env(var, value),
            None => command.env_remove(var),
        };
    }
    let out = child::output(&mut command);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files = Vec::new();
    for dir in [&dirs.home, &dirs.xdg, &dirs.explicit, &dirs.cwd] {
        collect_files(dir, &mut files);
    }
    files.sort();
    files
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().unwrap().is_dir() {
            collect_files(&entry.path(), files);
        } else {
            files.push(entry.path());
        }
    }
}

/// The files a save of `fib` in the default manager leaves in `base`: its cache file, the
/// manager's dependency graph (each `fib(n)` read `fib(n - 1)` and `fib(n - 2)`) and its
/// manifest (what the `cacheman` tool reads), each with its lock file.
fn fib_files(base: &Path) -> Vec<PathBuf> {
    let manager_dir = base.join("general_cache");
    vec![
        manager_dir.join(".graph.deps"),
        manager_dir.join(".graph.lock"),
        manager_dir.join(".manifest.json"),
        manager_dir.join(".manifest.lock"),
        manager_dir.join("fib.cache"),
        manager_dir.join("fib.lock"),
    ]
}

#[test]
fn xdg_cache_home_is_used_when_cacheman_dir_is_unset() {
    let dirs = dirs();
    let files = run(&dirs, None, Some(&dirs.xdg));
    assert_eq!(files, fib_files(&dirs.xdg.join("cacheman")));
}

#[test]
fn home_dot_cache_is_used_when_neither_is_set() {
    let dirs = dirs();
    let files = run(&dirs, None, None);
    assert_eq!(files, fib_files(&dirs.home.join(".cache/cacheman")));
}

#[test]
fn a_relative_xdg_cache_home_is_refused() {
    // The XDG Base Directory specification: relative paths are invalid and must be ignored.
    // Used, it would put the cache wherever the program happens to run.
    let dirs = dirs();
    let files = run(&dirs, None, Some(Path::new("relative/cache")));
    assert_eq!(files, fib_files(&dirs.home.join(".cache/cacheman")));
}

#[test]
fn empty_variables_count_as_unset() {
    let dirs = dirs();
    let files = run(&dirs, Some(Path::new("")), Some(Path::new("")));
    assert_eq!(files, fib_files(&dirs.home.join(".cache/cacheman")));
}

#[test]
fn cacheman_dir_wins_over_xdg_cache_home() {
    let dirs = dirs();
    let files = run(&dirs, Some(&dirs.explicit), Some(&dirs.xdg));
    assert_eq!(files, fib_files(&dirs.explicit));
}

#[cfg(unix)]
#[test]
fn the_directories_it_creates_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dirs = dirs();
    run(&dirs, None, Some(&dirs.xdg));
    for dir in [
        dirs.xdg.join("cacheman"),
        dirs.xdg.join("cacheman/general_cache"),
    ] {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    }
}
