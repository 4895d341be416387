//! A program that embeds the `cacheman` command, so that the commands needing its key and
//! value types work: `show`, `export` and `why` (the standalone `cacheman` binary has every
//! other command, but not the types). Everything else is as the binary does.
//!
//! ```text
//! cargo run --example inspect -- fill                       # compute and save a few entries
//! cargo run --example inspect -- ls                         # every cache under the directory
//! cargo run --example inspect -- show line_lengths          # every entry, as JSON
//! cargo run --example inspect -- show word_count '"a b c"'  # one value; the key is JSON
//! cargo run --example inspect -- why word_count '"a b c"'   # what that entry read
//! cargo run --example inspect -- export line_lengths        # everything, as JSON
//! ```
//!
//! The caches live in `$CACHEMAN_DIR` if it is set, else in `cacheman-inspect` under the
//! system's temporary directory.

use std::path::PathBuf;
use std::process::ExitCode;

use cacheman::{CacheManager, cached};

/// The length of each line of `text`.
#[cached]
fn line_lengths(text: String) -> Vec<usize> {
    text.lines().map(str::len).collect()
}

/// Words in `text`; reads `line_lengths(text)` only to show a recorded input in `why`.
#[cached]
fn word_count(text: String) -> usize {
    let _lines = line_lengths(text.clone());
    text.split_whitespace().count()
}

fn main() -> ExitCode {
    let dir = std::env::var_os("CACHEMAN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("cacheman-inspect"));
    let manager = CacheManager::new(cacheman::DEFAULT_MANAGER, &dir);
    if let Err(err) = cacheman::set_cache_manager(manager) {
        eprintln!("{err}");
        return ExitCode::FAILURE;
    }
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("fill") {
        for text in ["a b c", "one line\nand another", "x"] {
            println!("{text:?}: {} words", word_count(text.to_owned()));
        }
        // Saved at exit too; saved now so that the lines below are true when they print.
        if let Err(err) = cacheman::get_cache_manager().save_all_cache_contents() {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
        println!("saved under {}", dir.display());
        return ExitCode::SUCCESS;
    }
    // The directory the manager above uses, unless the command line says otherwise.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if !args.iter().any(|a| a == "--dir") {
        args.splice(1..1, ["--dir".into(), dir.into_os_string()]);
    }
    let code = cacheman::cli::run_with(args, &mut std::io::stdout().lock());
    ExitCode::from(code)
}
