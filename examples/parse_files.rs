//! A realistic use: an expensive parse of files, cached by path, with each file recorded as an
//! input of its entry (`cacheman::track_file`): an edited file is parsed again and an unchanged
//! one never is, across runs, and a file touched without a change is not parsed again either
//! (its contents are compared). The totals per directory read the parses, so only the totals
//! of the edited file's directory are recomputed.
//!
//! ```text
//! cargo run --example parse_files -- src/*.rs   # parses each file
//! cargo run --example parse_files -- src/*.rs   # reads every summary from the cache
//! touch src/lib.rs                              # same contents: still from the cache
//! echo "// edit" >> src/lib.rs                  # parses src/lib.rs alone again
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cacheman::cached;
use serde::{Deserialize, Serialize};

/// What the parse extracts from a source file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Summary {
    lines: usize,
    functions: Vec<String>,
    longest_line: usize,
}

/// Parses `path`. The file is an input of the entry: when its contents change, this entry
/// (and the totals that read it) is recomputed at its next lookup, also in a later run.
/// `result` keeps errors (a missing file, bad UTF-8) out of the cache. The value is an `Arc`,
/// so a hit clones a pointer (serde's `rc` feature saves it).
#[cached(result, capacity = 10_000)]
fn parse(path: &Path) -> std::io::Result<Arc<Summary>> {
    cacheman::track_file(path);
    let text = std::fs::read_to_string(path)?;
    let functions = text
        .lines()
        .map(|line| line.trim_start().trim_start_matches("pub(crate) "))
        .filter_map(|line| line.trim_start_matches("pub ").strip_prefix("fn "))
        .filter_map(|rest| rest.split(['(', '<']).next())
        .map(str::to_owned)
        .collect();
    Ok(Arc::new(Summary {
        lines: text.lines().count(),
        functions,
        longest_line: text.lines().map(str::len).max().unwrap_or(0),
    }))
}

/// Lines of the given files of one directory: reads their parses, so an edit of one file
/// recomputes its directory's total and no other.
#[cached]
fn lines_in(dir: &Path, files: &[PathBuf]) -> usize {
    files
        .iter()
        .filter(|f| f.parent() == Some(dir))
        .filter_map(|f| parse(f).ok())
        .map(|s| s.lines)
        .sum()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        eprintln!("usage: parse_files FILE...");
        std::process::exit(2);
    }
    let started = Instant::now();
    for path in &paths {
        match parse(path) {
            Ok(summary) => println!(
                "{}: {} lines, longest {}, fns {:?}",
                path.display(),
                summary.lines,
                summary.longest_line,
                summary.functions
            ),
            Err(err) => println!("{}: {err}", path.display()),
        }
    }
    let mut dirs: Vec<&Path> = paths.iter().filter_map(|p| p.parent()).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        println!("{}: {} lines", dir.display(), lines_in(dir, &paths));
    }
    let stats = parse_cache().stats();
    println!(
        "{} files in {:.1?}: {} from the cache, {} parsed",
        paths.len(),
        started.elapsed(),
        stats.hits,
        stats.misses
    );
    cacheman::get_cache_manager().save_all_cache_contents()?;
    Ok(())
}
