//! `#[cached]` across processes: a second run of a program answers from the file the first
//! one saved, and a changed body (or `version`) never sees the old entries.

use std::path::Path;
use std::process::Command;

fn run(program: &str, args: &[&str], cache_dir: &Path) -> String {
    let output = tests::child::output(
        Command::new(program)
            .args(args)
            .env("CACHEMAN_DIR", cache_dir),
    );
    assert!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_second_run_answers_from_the_saved_cache() {
    let dir = tempfile::tempdir().unwrap();
    let fib = env!("CARGO_BIN_EXE_cached_fib");
    let first = run(fib, &["80"], dir.path());
    assert_eq!(first, "fib(80) = 23416728348467685, body runs: 81");
    assert!(dir.path().join("general_cache/fib.cache").exists());
    let second = run(fib, &["80"], dir.path());
    assert_eq!(second, "fib(80) = 23416728348467685, body runs: 0");
    let further = run(fib, &["82"], dir.path());
    assert_eq!(further, "fib(82) = 61305790721611591, body runs: 2");
}

#[test]
fn a_changed_body_or_version_does_not_see_old_entries_nor_what_was_derived_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = (env!("CARGO_BIN_EXE_body_v1"), env!("CARGO_BIN_EXE_body_v2"));
    assert_eq!(
        run(v1, &[], dir.path()),
        "derived = 200, compute = 2, versioned = 10, body runs: 3"
    );
    assert_eq!(
        run(v1, &[], dir.path()),
        "derived = 200, compute = 2, versioned = 10, body runs: 0"
    );
    // Same cache names, same types: only the function fingerprints differ. `derived` read
    // `compute`, whose body changed: it is recomputed although its own body did not change.
    assert_eq!(
        run(v2, &[], dir.path()),
        "derived = 300, compute = 3, versioned = 10, body runs: 3"
    );
    assert_eq!(
        run(v2, &[], dir.path()),
        "derived = 300, compute = 3, versioned = 10, body runs: 0"
    );
    // Going back is a change too.
    assert_eq!(
        run(v1, &[], dir.path()),
        "derived = 200, compute = 2, versioned = 10, body runs: 3"
    );
}
