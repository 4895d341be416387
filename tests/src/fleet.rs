//! Processes standing for the hosts of a fleet that shares caches on Redis (the
//! `redis_worker` binary), and the marks they leave: what the `redis*` test targets share.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

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
