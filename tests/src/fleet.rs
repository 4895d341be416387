//! Processes standing for the hosts of a fleet that shares caches on Redis (the
//! `redis_worker` binary), and the marks they leave: what the `redis*` test targets share.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::child::{self, Lines};

/// `name` made this run's own, so that runs against a long-lived server never meet.
pub fn unique(name: &str) -> String {
    format!("{name}_{}", std::process::id())
}

/// The worker binary `exe` (a test's `env!("CARGO_BIN_EXE_redis_worker")`) on the server at
/// `url`, as one host of `manager`, leaving its marks in `marks`.
pub fn worker(exe: &str, url: &str, manager: &str, marks: &Path) -> Command {
    let mut command = Command::new(exe);
    command.arg(url).arg(manager).arg(marks);
    command
}

/// Body runs per key, over every process's marks.
pub fn runs(marks: &Path) -> BTreeMap<u64, usize> {
    let mut runs = BTreeMap::new();
    for entry in std::fs::read_dir(marks).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some((key, _pid)) = name.split_once('.')
            && let Ok(key) = key.parse::<u64>()
        {
            let text = std::fs::read_to_string(marks.join(&name)).unwrap();
            *runs.entry(key).or_default() += text.len();
        }
    }
    runs
}

/// Body runs over every key and process.
pub fn runs_total(marks: &Path) -> usize {
    runs(marks).values().sum()
}

/// A worker started with `serve`: asked one line at a time.
pub struct Serving {
    process: Child,
    lines: Lines,
}

impl Serving {
    /// Starts `command` (a worker with its `serve` arguments) and waits for its `ready`.
    pub fn start(mut command: Command) -> Self {
        let mut process = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the worker starts");
        let mut lines = Lines::of(&mut process);
        assert_eq!(lines.next(&mut process), "ready");
        Serving { process, lines }
    }

    /// Sends `line`; the line the worker answers.
    pub fn ask(&mut self, line: &str) -> String {
        writeln!(self.process.stdin.as_mut().expect("piped stdin"), "{line}").unwrap();
        self.lines.next(&mut self.process)
    }

    /// Closes its input and waits for it to end well.
    pub fn finish(mut self) {
        drop(self.process.stdin.take());
        assert!(child::wait(&mut self.process, "a serving worker").success());
    }
}

/// Starts `count` workers from `command` (each given the `go` file last), then creates `go`
/// so that they start their work together; their stdout is piped.
pub fn herd(count: usize, command: impl Fn() -> Command, go: &Path) -> Vec<Child> {
    let herd: Vec<Child> = (0..count)
        .map(|_| {
            command()
                .arg(go)
                .stdout(Stdio::piped())
                .spawn()
                .expect("a herd worker starts")
        })
        .collect();
    std::fs::write(go, b"").unwrap();
    herd
}

/// A manager standing for one host, with its own directory, on the server or Cluster at
/// `url` (short timeouts, so that a test of a down server does not wait long).
#[cfg(feature = "redis")]
pub fn host(name: &str, url: &str) -> (tempfile::TempDir, cacheman::CacheManager) {
    let dir = tempfile::tempdir().unwrap();
    let redis = cacheman::Redis::new(url)
        .retry_after(std::time::Duration::from_millis(50))
        .command_timeout(std::time::Duration::from_millis(500));
    let manager = cacheman::CacheManager::new(name, dir.path()).with_redis(redis);
    (dir, manager)
}
