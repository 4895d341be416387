//! Per-entry dependencies with real processes sharing one cache directory: what one process
//! invalidates, or a file edited between runs, recomputes exactly the entries that read it in
//! the next process, and a live process sees another's invalidation at its next save (read
//! from the frames the other appended to the graph's journal).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

const PROGRAM: &str = env!("CARGO_BIN_EXE_entry_deps");
/// How long an answer may take before the test fails (never hangs).
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// A live `entry_deps` process.
struct Program {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Program {
    fn start(cache_dir: &Path) -> Program {
        let mut child = Command::new(PROGRAM)
            .env("CACHEMAN_DIR", cache_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Program {
            child,
            stdin,
            lines,
        }
    }

    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.lines
            .recv_timeout(ANSWER_WITHIN)
            .unwrap_or_else(|_| panic!("no answer to `{command}` within {ANSWER_WITHIN:?}"))
    }

    fn quit(mut self) {
        assert_eq!(self.ask("quit"), "bye");
        // Its standard output closes when it exits: the reader thread then hangs up.
        match self.lines.recv_timeout(ANSWER_WITHIN) {
            Err(RecvTimeoutError::Disconnected) => {}
            other => panic!("the program did not exit after `quit`: {other:?}"),
        }
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the commands in a new process, one after the other; returns the answers.
fn run(cache_dir: &Path, commands: &[&str]) -> Vec<String> {
    let mut program = Program::start(cache_dir);
    let answers = commands.iter().map(|c| program.ask(c)).collect();
    program.quit();
    answers
}

fn files(dir: &Path, texts: &[&str]) -> Vec<PathBuf> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let path = dir.join(format!("doc{i}.txt"));
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

fn summary_of(paths: &[PathBuf]) -> String {
    let all: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!("summary {}", all.join(" "))
}

#[test]
fn an_entry_invalidated_by_another_process_recomputes_only_what_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let docs = files(dir.path(), &["a b", "c d e", "f"]);
    let all = summary_of(&docs);
    assert_eq!(run(&cache, &[&all]), ["2w3b 3w5b 1w1b runs 3 3 3 3"]);
    assert_eq!(run(&cache, &[&all]), ["2w3b 3w5b 1w1b runs 0 0 0 0"]);

    // Another process invalidates doc1 (the file changed without its metadata telling).
    std::fs::write(&docs[1], "c d e g").unwrap();
    let invalidate = format!("invalidate {}", docs[1].display());
    assert_eq!(run(&cache, &[&invalidate]), ["ok"]);
    // Only doc1's chain runs again, and the diamond's tip (summary) once.
    assert_eq!(run(&cache, &[&all]), ["2w3b 4w7b 1w1b runs 1 1 1 1"]);
}

#[test]
fn an_input_recomputed_to_the_same_value_stops_the_cascade_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let docs = files(dir.path(), &["a b"]);
    let all = summary_of(&docs);
    run(&cache, &[&all]);
    let invalidate = format!("invalidate {}", docs[0].display());
    let doc = format!("doc {}", docs[0].display());
    // The document is invalidated, then read first and found equal: nothing else runs.
    assert_eq!(
        run(&cache, &[&invalidate, &doc, &all]),
        ["ok", "3 runs 1 0 0 0", "2w3b runs 0 0 0 0"]
    );
}

#[test]
fn a_tracked_file_edited_between_runs_recomputes_only_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let docs = files(dir.path(), &["a b", "c d e"]);
    let all = summary_of(&docs);
    assert_eq!(run(&cache, &[&all]), ["2w3b 3w5b runs 2 2 2 2"]);
    // Rewritten with the same contents: a new modification time, nothing recomputed.
    std::fs::write(&docs[0], "a b").unwrap();
    assert_eq!(run(&cache, &[&all]), ["2w3b 3w5b runs 0 0 0 0"]);
    // Edited: its four entries, and no other.
    std::fs::write(&docs[0], "a b c").unwrap();
    assert_eq!(run(&cache, &[&all]), ["3w5b 3w5b runs 1 1 1 1"]);
}

#[test]
fn a_live_process_sees_another_processes_invalidation_at_its_next_save() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let docs = files(dir.path(), &["a b", "c d e"]);
    let all = summary_of(&docs);
    let mut first = Program::start(&cache);
    assert_eq!(first.ask(&all), "2w3b 3w5b runs 2 2 2 2");
    assert_eq!(first.ask("save"), "ok");
    let graph = cache.join("entry_deps/.graph.deps");
    let snapshot = std::fs::read(&graph).unwrap();

    let mut second = Program::start(&cache);
    std::fs::write(&docs[0], "a b c d").unwrap();
    assert_eq!(
        second.ask(&format!("invalidate {}", docs[0].display())),
        "ok"
    );
    // The invalidation reached the graph as a frame appended to its journal, not a rewrite.
    assert_eq!(std::fs::read(&graph).unwrap(), snapshot);
    let journal = cache.join("entry_deps/.graph.journal");
    let appended = std::fs::metadata(&journal).unwrap().len();
    assert_eq!(second.ask(&all), "4w7b 3w5b runs 1 1 1 1");
    second.quit();
    assert!(std::fs::metadata(&journal).unwrap().len() > appended);
    assert_eq!(std::fs::read(&graph).unwrap(), snapshot);

    // The first process still holds doc0's old entries until it syncs with the files.
    assert_eq!(first.ask("save"), "ok");
    assert_eq!(first.ask(&all), "4w7b 3w5b runs 1 1 1 1");
    first.quit();
}
