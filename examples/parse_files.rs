//! A realistic use: an expensive parse of files, cached by path and modification time, so an
//! edited file is parsed again and an unchanged one never is, across runs.
//!
//! ```text
//! cargo run --example parse_files -- src/*.rs   # parses each file
//! cargo run --example parse_files -- src/*.rs   # reads every summary from the cache
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use cacheman::cached;
use serde::{Deserialize, Serialize};

/// What the parse extracts from a source file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Summary {
    lines: usize,
    functions: Vec<String>,
    longest_line: usize,
}

/// Parses `path`. The key is the path and the modification time: editing the file changes the
/// key, so the stale summary is simply never asked for. `result` keeps errors (a missing
/// file, bad UTF-8) out of the cache. The value is an `Arc`, so a hit clones a pointer (serde's
/// `rc` feature saves it). The capacity drops the summaries of old versions in time.
#[cached(
    result,
    key = (path.to_path_buf(), modified),
    key_type = (PathBuf, SystemTime),
    capacity = 10_000
)]
fn parse(path: &Path, modified: SystemTime) -> std::io::Result<Arc<Summary>> {
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

fn summarize(path: &Path) -> std::io::Result<Arc<Summary>> {
    let modified = std::fs::metadata(path)?.modified()?;
    parse(path, modified)
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
        match summarize(path) {
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
    let stats = parse_cache().stats();
    println!(
        "{} files in {:.1?}: {} from the cache, {} parsed",
        paths.len(),
        started.elapsed(),
        stats.hits,
        stats.misses
    );
    parse_cache().save()?;
    Ok(())
}
