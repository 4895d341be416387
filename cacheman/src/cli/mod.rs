//! The `cacheman` command: see, verify and manage caches from the shell (feature `cli`).
//!
//! The `cacheman-cli` crate's binary is this module's [`run`]; a program can embed the same
//! commands (for example behind a `cache` subcommand of its own) by calling [`run_with`]
//! with its arguments. Every command reads files only, through [`inspect`](crate::inspect);
//! `clear`, `invalidate` and `evict` change caches under the library's own locks and epochs,
//! so that programs running meanwhile never write cleared entries back.
//!
//! Exit codes: 0 when all is well, 1 when a problem was found (a damaged file, a failed
//! operation), 2 for a usage error (an unknown option, cache or manager). `--json` prints one
//! JSON document whose field names are stable (docs/CLI.md lists them).
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! let manager = cacheman::CacheManager::new("app", dir.path());
//! let cache = manager.register_cache::<u32, u32>("squares").unwrap();
//! cache.insert(3, 9);
//! cache.save().unwrap();
//!
//! let mut out = Vec::new();
//! let dir_arg = dir.path().to_str().unwrap();
//! let code = cacheman::cli::run_with(["cacheman", "--dir", dir_arg, "ls"], &mut out);
//! assert_eq!(code, 0);
//! let text = String::from_utf8(out).unwrap();
//! assert!(text.contains("app/squares"), "{text}");
//! ```

/// The value of a `Result<T, Outcome>`, or returns its outcome as the command's.
macro_rules! try_outcome {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(outcome) => return Ok(outcome),
        }
    };
}

mod commands;
mod graph;
mod output;
mod typed;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// See, verify and manage cacheman caches.
#[derive(Debug, Parser)]
#[command(name = "cacheman", version, about, long_about = None)]
struct Cli {
    /// The base directory holding the managers' directories (default: $CACHEMAN_DIR, else the
    /// user's cache directory followed by `cacheman`, as the library uses).
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print one JSON document instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Managers and caches: entries, size, codec, last saved, format, save in progress.
    Ls,
    /// Hits, misses, hit rate, evictions, saves and loads, as programs recorded them.
    Stats(Target),
    /// The dependencies between caches: declared edges and recorded per-entry reads.
    Graph {
        /// Only this manager.
        manager: Option<String>,
        /// Print Graphviz `dot` instead of a tree.
        #[arg(long, conflicts_with = "json")]
        dot: bool,
    },
    /// Check every cache file (header, length, checksum, counts) and report damage.
    Verify(Target),
    /// Empty a cache (its file gets a newer epoch; running programs drop their copy).
    Clear(Required),
    /// Invalidate a cache and, unless told not to, every cache that depends on it.
    Invalidate {
        #[command(flatten)]
        target: Required,
        /// Leave the declared dependents alone (recorded readers of its entries still follow).
        #[arg(long)]
        no_dependents: bool,
    },
    /// The entries of a cache, or the value of one key (needs the program's types).
    Show {
        /// `CACHE` or `MANAGER/CACHE`.
        cache: String,
        /// The key, as JSON (`10`, `"a b"`, `[1, 2]`); text that is not JSON is a string.
        key: Option<String>,
    },
    /// Every entry of a cache as JSON (needs the program's types).
    Export {
        /// `CACHE` or `MANAGER/CACHE`.
        cache: String,
    },
    /// What an entry read when it was computed, and whether that changed since (needs the
    /// program's types).
    Why {
        /// `CACHE` or `MANAGER/CACHE`.
        cache: String,
        /// The key, as JSON; text that is not JSON is a string.
        key: String,
    },
    /// Clear caches whose file is older or larger than a limit.
    Evict {
        /// Files last saved longer ago than this (`90s`, `15m`, `12h`, `7d`, `2w`).
        #[arg(long, value_parser = output::parse_age, value_name = "AGE")]
        older_than: Option<std::time::Duration>,
        /// Files larger than this (`500KiB`, `1GiB`, `2MB`, or bytes).
        #[arg(long, value_parser = output::parse_size, value_name = "SIZE")]
        larger_than: Option<u64>,
        /// Say what would be cleared, clear nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// An optional cache: `CACHE` or `MANAGER/CACHE`.
#[derive(Debug, Args)]
struct Target {
    /// `CACHE` or `MANAGER/CACHE` (default: every cache).
    cache: Option<String>,
}

/// A cache: `CACHE` or `MANAGER/CACHE`.
#[derive(Debug, Args)]
struct Required {
    /// `CACHE` or `MANAGER/CACHE` (`CACHE` alone must name a cache of one manager only).
    cache: String,
}

/// How a command ended.
pub(crate) enum Outcome {
    Ok,
    /// Problems were found or an operation failed (exit 1).
    Problems,
    /// The command was asked something that cannot be (exit 2), with the message.
    Usage(String),
}

/// Runs the command line of this process and returns its exit code: 0 ok, 1 problems
/// found, 2 usage error. What `main` of the `cacheman` binary does.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     cacheman::cli::run()
/// }
/// ```
pub fn run() -> ExitCode {
    let code = run_with(std::env::args_os(), &mut std::io::stdout().lock());
    ExitCode::from(code)
}

/// Runs `args` (the program name first) writing to `out`, and returns the exit code: 0 ok, 1
/// problems found, 2 usage error. Help and usage errors go to `out` and standard error as
/// clap prints them.
///
/// ```
/// let mut out = Vec::new();
/// assert_eq!(cacheman::cli::run_with(["cacheman", "no-such-command"], &mut out), 2);
/// ```
pub fn run_with<I, T>(args: I, out: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with_caches(args, out, &[])
}

/// [`run_with`], with caches of the program whose types `show`, `export` and `why` may use
/// besides those of its `#[cached]` functions (which they find by themselves): caches
/// registered through the manager API, by name.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let manager = cacheman::CacheManager::new("app", dir.path());
/// let cache = manager.register_cache::<String, u32>("lengths").unwrap();
/// cache.insert("four".into(), 4);
///
/// let mut out = Vec::new();
/// let code = cacheman::cli::run_with_caches(["cacheman", "show", "lengths", "four"], &mut out, &[&cache]);
/// assert_eq!(code, 0);
/// assert_eq!(String::from_utf8(out).unwrap(), "4\n");
/// ```
pub fn run_with_caches<I, T>(
    args: I,
    out: &mut dyn Write,
    caches: &[&dyn crate::inspect::TypedView],
) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = if err.use_stderr() {
                eprint!("{err}");
                Ok(())
            } else {
                write!(out, "{err}")
            };
            return code;
        }
    };
    let base = cli.dir.clone().unwrap_or_else(crate::default_base_dir);
    let style = output::Style::for_output(cli.json);
    let context = commands::Context {
        base,
        json: cli.json,
        style,
    };
    let views = typed::Views { given: caches };
    let outcome = match cli.command {
        Command::Ls => commands::ls(&context, out),
        Command::Stats(target) => commands::stats(&context, target.cache.as_deref(), out),
        Command::Graph { manager, dot } => graph::graph(&context, manager.as_deref(), dot, out),
        Command::Verify(target) => commands::verify(&context, target.cache.as_deref(), out),
        Command::Clear(target) => commands::clear(&context, &target.cache, out),
        Command::Invalidate {
            target,
            no_dependents,
        } => commands::invalidate(&context, &target.cache, !no_dependents, out),
        Command::Show { cache, key } => {
            typed::show(&views, &cache, key.as_deref(), context.json, out)
        }
        Command::Export { cache } => typed::export(&views, &cache, out),
        Command::Why { cache, key } => typed::why(&views, &cache, &key, context.json, out),
        Command::Evict {
            older_than,
            larger_than,
            dry_run,
        } => commands::evict(&context, older_than, larger_than, dry_run, out),
    };
    match outcome {
        Ok(Outcome::Ok) => 0,
        Ok(Outcome::Problems) => 1,
        Ok(Outcome::Usage(message)) => {
            eprintln!("error: {message}");
            2
        }
        Err(err) => {
            eprintln!("error: could not write the output: {err}");
            1
        }
    }
}
