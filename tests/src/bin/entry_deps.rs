//! A program of four `#[cached]` functions that read each other and files, driven line by line
//! on standard input by `tests/tests/entry_processes.rs`, so that several live processes can
//! share one cache directory:
//!
//! ```text
//! docs[path]    ← the file at `path` (track_file)
//! counts[path]  ← docs[path]          lengths[path] ← docs[path]
//! summary[path] ← counts[path], lengths[path]
//! ```
//!
//! Commands, one per line, each answered by one line:
//! - `summary PATH...`: the summaries, then the body runs since the last answer, as
//!   `runs docs counts lengths summary`;
//! - `doc PATH`: the document alone (recomputes it if it was invalidated);
//! - `invalidate PATH`: invalidates `docs[PATH]` (and what read it);
//! - `save`: saves every cache; `quit`: saves and exits.

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};

use cacheman::cached;

static RUNS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

fn ran(i: usize) {
    RUNS[i].fetch_add(1, Ordering::SeqCst);
}

#[cached(name = "docs", manager = "entry_deps")]
fn doc(path: String) -> String {
    ran(0);
    cacheman::track_file(&path);
    std::fs::read_to_string(&path).unwrap_or_default()
}

#[cached(name = "counts", manager = "entry_deps")]
fn count(path: String) -> usize {
    ran(1);
    doc(path).split_whitespace().count()
}

#[cached(name = "lengths", manager = "entry_deps")]
fn length(path: String) -> usize {
    ran(2);
    doc(path).len()
}

#[cached(name = "summary", manager = "entry_deps")]
fn summary(path: String) -> String {
    ran(3);
    format!("{}w{}b", count(path.clone()), length(path))
}

fn runs() -> String {
    let r: Vec<String> = RUNS
        .iter()
        .map(|r| r.swap(0, Ordering::SeqCst).to_string())
        .collect();
    format!("runs {}", r.join(" "))
}

fn main() -> Result<(), cacheman::Error> {
    let manager = cacheman::get_cache_manager_named("entry_deps");
    manager.set_autosync(cacheman::AutoSync::disabled());
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| cacheman::Error::Io {
            cache: "(stdin)".into(),
            action: "read a command",
            path: "-".into(),
            source: e,
        })?;
        let mut words = line.split_whitespace();
        let answer = match words.next() {
            Some("summary") => {
                let all: Vec<String> = words.map(|p| summary(p.to_owned())).collect();
                format!("{} {}", all.join(" "), runs())
            }
            Some("doc") => {
                let path = words.next().unwrap_or_default().to_owned();
                format!("{} {}", doc(path).len(), runs())
            }
            Some("invalidate") => {
                let path = words.next().unwrap_or_default().to_owned();
                doc_cache().invalidate_key(&path)?;
                "ok".to_owned()
            }
            Some("save") => {
                manager.save_all_cache_contents()?;
                "ok".to_owned()
            }
            Some("quit") => {
                manager.save_all_cache_contents()?;
                println!("bye");
                return Ok(());
            }
            other => format!("unknown command {other:?}"),
        };
        println!("{answer}");
    }
    Ok(())
}
