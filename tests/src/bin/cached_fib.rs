//! A program that computes `fib(N)` through `#[cached]` in the default manager (so
//! `CACHEMAN_DIR` decides where its file goes), saves it, and prints how many times the body
//! ran, for the test that runs it twice.
//!
//! ```text
//! cached_fib N    # prints "fib(N) = X, body runs: R"
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use cacheman::cached;

static RUNS: AtomicU64 = AtomicU64::new(0);

#[cached]
fn fib(n: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::Relaxed);
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

fn main() -> ExitCode {
    let Some(n) = std::env::args().nth(1).and_then(|a| a.parse::<u64>().ok()) else {
        eprintln!("usage: cached_fib N");
        return ExitCode::from(2);
    };
    let value = fib(n);
    if let Err(err) = fib_cache().save() {
        eprintln!("cached_fib: {err}");
        return ExitCode::FAILURE;
    }
    println!(
        "fib({n}) = {value}, body runs: {}",
        RUNS.load(Ordering::Relaxed)
    );
    ExitCode::SUCCESS
}
