//! The commands that need the program's types (`show`, `export`, `why`), run in-process as a
//! program embedding `cacheman::cli` does, and refused by the standalone binary.

use assert_cmd::Command;
use cacheman::{AutoSync, CacheManager, cached};
use serde_json::{Value, json};

#[cached(manager = "typed_cli")]
fn squares(n: u64) -> u64 {
    n * n
}

#[cached(manager = "typed_cli")]
fn described(n: u64) -> String {
    format!("{n} squared is {}", squares(n))
}

fn run(args: &[&str]) -> (u8, String) {
    let mut out = Vec::new();
    let mut all = vec!["cacheman"];
    all.extend_from_slice(args);
    let code = cacheman::cli::run_with(all, &mut out);
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn show_export_and_why_use_the_program_s_types() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("typed_cli", dir.path());
    manager.set_autosync(AutoSync::disabled());
    cacheman::set_cache_manager(manager.clone()).unwrap();
    for n in [2, 3] {
        described(n);
    }
    manager.save_all_cache_contents().unwrap();

    let (code, out) = run(&["show", "squares"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "squares (u64 -> u64), 2 entries\n2 => 4\n3 => 9\n");
    let (code, out) = run(&["show", "typed_cli/described", "3"]);
    assert_eq!(code, 0);
    assert_eq!(out, "\"3 squared is 9\"\n");
    let (code, out) = run(&["--json", "show", "described", "2"]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc,
        json!({"cache": "described", "key": 2, "value": "2 squared is 4"})
    );

    let (code, out) = run(&["show", "described", "7"]);
    assert_eq!(code, 1, "a key with no entry is a problem found");
    assert!(out.contains("no entry for 7"), "{out}");
    let (code, _) = run(&["show", "described", "\"seven\""]);
    assert_eq!(code, 2, "a key of another type is a usage error");
    let (code, _) = run(&["show", "nothing_like_it"]);
    assert_eq!(code, 2);

    let (code, out) = run(&["export", "squares"]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc, json!([{"key": 2, "value": 4}, {"key": 3, "value": 9}]));

    let (code, out) = run(&["why", "described", "3"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("3: entry #"), "{out}");
    assert!(out.contains("of cache `described`: fresh"), "{out}");
    assert!(out.contains("of cache `squares` (same)"), "{out}");
    squares_cache().invalidate_key(&3).unwrap();
    let (_, out) = run(&["--json", "why", "described", "3"]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["staleness"], "suspect (an input changed; checked at the next lookup)",
        "{doc}"
    );
    assert_eq!(doc["inputs"][0]["changed"], true, "{doc}");
}

#[test]
fn the_standalone_binary_has_no_types_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("cacheman")
        .unwrap()
        .args(["--dir", dir.path().to_str().unwrap(), "show", "squares"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("only the program") && err.contains("examples/inspect.rs"),
        "{err}"
    );
}
