//! The `cacheman` binary against caches written by a real program (this test process) in a
//! temporary directory: every command's table and `--json` output, exit codes, and changes
//! made while the program holds unsaved entries.

use std::path::Path;

use assert_cmd::Command;
use cacheman::{AutoSync, CacheManager};
use serde_json::Value;

/// The binary, with `--dir base` and no colour.
fn cacheman(base: &Path) -> Command {
    let mut command = Command::cargo_bin("cacheman").unwrap();
    command.env("NO_COLOR", "1").arg("--dir").arg(base);
    command
}

fn run(base: &Path, args: &[&str]) -> (i32, String, String) {
    let output = cacheman(base).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(base: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(base, &all);
    let value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, value)
}

fn manager(base: &Path, name: &str) -> CacheManager {
    let manager = CacheManager::new(name, base);
    manager.set_autosync(AutoSync::disabled());
    manager
}

/// Manager `app`: `raw` (3 entries) → `derived` (declared, and recorded per entry: each derived
/// entry read one raw entry), plus `other/solo`. Returns the managers.
fn populate(base: &Path) -> (CacheManager, CacheManager) {
    let app = manager(base, "app");
    app.register_dependent_cache("raw", "derived").unwrap();
    let raw = app.register_cache::<u64, u64>("raw").unwrap();
    let derived = app.register_cache::<u64, String>("derived").unwrap();
    for k in 0..3 {
        let value = derived.get_or_insert_with(k, || {
            let r = raw.get_or_insert_with(k, || k * 10);
            format!("value {r}")
        });
        assert_eq!(value, format!("value {}", k * 10));
    }
    assert_eq!(derived.get(&1).as_deref(), Some("value 10")); // a hit
    app.save_all_cache_contents().unwrap();
    let other = manager(base, "other");
    let solo = other.register_cache::<String, u32>("solo").unwrap();
    solo.insert("a".into(), 1);
    solo.save().unwrap();
    (app, other)
}

#[test]
fn ls_lists_managers_and_caches() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let (code, out, err) = run(dir.path(), &["ls"]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("CACHE"), "{out}");
    assert!(
        lines[0].contains("ENTRIES") && lines[0].contains("STATE"),
        "{out}"
    );
    let row = |name: &str| *lines.iter().find(|l| l.starts_with(name)).unwrap();
    assert!(row("app/derived ").contains(" 3 "), "{out}");
    assert!(row("app/raw ").contains("postcard"), "{out}");
    assert!(row("other/solo ").ends_with("ok"), "{out}");
    // Columns line up: every row's ENTRIES column ends where the header's does.
    let end = lines[0].find("ENTRIES").unwrap() + "ENTRIES".len();
    for line in &lines[1..] {
        assert!(line[..end].ends_with(|c: char| c.is_ascii_digit()), "{out}");
    }

    let (code, doc) = json(dir.path(), &["ls"]);
    assert_eq!(code, 0);
    let managers = doc["managers"].as_array().unwrap();
    assert_eq!(managers.len(), 2);
    let raw = &managers[0]["caches"].as_array().unwrap()[1];
    assert_eq!(raw["name"], "raw");
    assert_eq!(raw["entries"], 3);
    assert_eq!(raw["codec"], "postcard");
    assert_eq!(raw["format_version"], 4);
    assert_eq!(raw["save_in_progress"], false);
    assert!(raw["size_bytes"].as_u64().unwrap() > 60);
    assert!(raw["modified_unix_ms"].as_u64().unwrap() > 0);
}

#[test]
fn an_empty_directory_has_no_caches() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(dir.path(), &["ls"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("no caches under"), "{out}");
    let (code, doc) = json(&dir.path().join("missing"), &["ls"]);
    assert_eq!(code, 0);
    assert_eq!(doc["managers"], Value::Array(Vec::new()));
}

#[test]
fn stats_are_those_the_program_recorded() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let (code, doc) = json(dir.path(), &["stats", "app/derived"]);
    assert_eq!(code, 0);
    let stats = &doc["caches"][0]["stats"];
    assert_eq!(doc["caches"][0]["cache"], "app/derived");
    assert_eq!(stats["hits"], 1);
    assert_eq!(stats["misses"], 3);
    assert_eq!(stats["saves"], 1);
    assert_eq!(stats["entries"], 3);
    assert_eq!(stats["hit_ratio"], 0.25);

    // A second process adds to what the first recorded.
    let app = manager(dir.path(), "app");
    let derived = app.register_cache::<u64, String>("derived").unwrap();
    assert!(derived.get(&0).is_some());
    assert!(derived.get(&9).is_none());
    derived.save().unwrap();
    let (_, doc) = json(dir.path(), &["stats", "derived"]);
    let stats = &doc["caches"][0]["stats"];
    assert_eq!(stats["hits"], 2, "{doc}");
    assert_eq!(stats["misses"], 4, "{doc}");
    assert_eq!(stats["saves"], 2, "{doc}");
    assert_eq!(stats["loads"], 2, "{doc}");

    let (code, out, _) = run(dir.path(), &["stats"]);
    assert_eq!(code, 0);
    assert!(out.lines().next().unwrap().contains("HIT RATE"), "{out}");
    assert!(
        out.contains("app/derived") && out.contains("33.3%"),
        "{out}"
    );
}

#[test]
fn graph_shows_declared_and_recorded_edges() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let (code, out, _) = run(dir.path(), &["graph", "app"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("app\n"), "{out}");
    assert!(out.contains("  raw\n"), "{out}");
    assert!(
        out.contains("  └─ derived (declared; 3 reads recorded)"),
        "{out}"
    );
    assert!(out.contains("6 entries recorded"), "{out}");

    let (_, dot, _) = run(dir.path(), &["graph", "--dot"]);
    assert!(dot.starts_with("digraph cacheman {"), "{dot}");
    assert!(dot.contains("\"app/raw\" -> \"app/derived\";"), "{dot}");
    assert!(
        dot.contains("\"app/raw\" -> \"app/derived\" [style=dashed, label=\"3 reads\"];"),
        "{dot}"
    );

    let (_, doc) = json(dir.path(), &["graph", "app"]);
    let app = &doc["managers"][0];
    assert_eq!(app["declared"][0]["from"], "raw");
    assert_eq!(app["declared"][0]["to"], "derived");
    assert_eq!(app["recorded"][0]["reads"], 3);
    assert_eq!(app["recorded_entries"], 6);

    let (code, _, err) = run(dir.path(), &["graph", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no manager `nope`"), "{err}");
}

#[test]
fn verify_names_damage_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = populate(dir.path());
    let (code, out, _) = run(dir.path(), &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("app/raw") && out.contains("ok"), "{out}");

    let path = app.cache_file_path("raw").unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let (code, out, _) = run(dir.path(), &["verify", "app/raw"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("damaged") && out.contains("payload checksum mismatch"),
        "{out}"
    );

    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let (code, doc) = json(dir.path(), &["verify"]);
    assert_eq!(code, 1);
    let raw = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cache"] == "app/raw")
        .unwrap();
    assert_eq!(raw["result"], "damaged");
    assert!(
        raw["detail"].as_str().unwrap().contains("truncated"),
        "{doc}"
    );
    // `ls` sees the damage in the header's length too.
    let (code, out, _) = run(dir.path(), &["ls"]);
    assert_eq!(code, 1);
    assert!(out.contains("damaged: the header claims"), "{out}");
}

#[test]
fn unreadable_files_and_foreign_names_are_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = populate(dir.path());
    // A "cache file" that cannot be read as a file, whoever runs the test (root included).
    std::fs::create_dir(app.directory().join("broken.cache")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"\xff\xfe.cache");
        std::fs::write(app.directory().join(name), b"x").unwrap();
    }
    let (code, out, err) = run(dir.path(), &["ls"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("app/broken") && out.contains("could not be read"),
        "{out}"
    );
    #[cfg(unix)]
    assert!(out.contains("not UTF-8"), "{out}");
    assert!(
        out.contains("app/raw"),
        "the other caches are still listed: {out}"
    );
    let (code, out, _) = run(dir.path(), &["verify", "app/broken"]);
    assert_eq!(code, 1);
    assert!(out.contains("unreadable"), "{out}");
}

#[test]
fn clear_wins_over_a_running_program_s_unsaved_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = populate(dir.path());
    let raw = app.registered_cache::<u64, u64>("raw").unwrap();
    raw.insert(7, 70); // unsaved: the program holds a dirty copy
    let (code, out, _) = run(dir.path(), &["clear", "raw"]);
    assert_eq!(code, 0);
    assert_eq!(out, "cleared app/raw\n");
    // The program's next save must not bring the cleared entries back.
    raw.save().unwrap();
    assert!(raw.is_empty(), "the program dropped its copy");
    raw.reload().unwrap();
    assert!(raw.is_empty(), "the file holds nothing from before");
    // Derived entries stay: the raw ones are checked again when recomputed.
    let derived = app.registered_cache::<u64, String>("derived").unwrap();
    assert_eq!(derived.len(), 3);
}

#[test]
fn invalidate_follows_dependents_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = populate(dir.path());
    let (code, doc) = json(dir.path(), &["invalidate", "raw", "--no-dependents"]);
    assert_eq!(code, 0);
    assert_eq!(doc["invalidated"], serde_json::json!(["app/raw"]));
    let derived = app.registered_cache::<u64, String>("derived").unwrap();
    // The recorded readers of raw's entries go anyway, at the program's next save.
    derived.save().unwrap();
    assert!(
        derived.is_empty(),
        "recorded readers follow: {:?}",
        derived.len()
    );

    let (app, _) = populate(dir.path());
    let (code, out, _) = run(dir.path(), &["invalidate", "app/raw"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("invalidated app/raw\ninvalidated app/derived\n"),
        "{out}"
    );
    let derived = app.registered_cache::<u64, String>("derived").unwrap();
    derived.save().unwrap();
    derived.reload().unwrap();
    assert!(derived.is_empty());
}

#[test]
fn evict_by_size_dry_run_first() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let (code, out, _) = run(dir.path(), &["evict", "--larger-than", "61B", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("would clear app/raw"), "{out}");
    assert!(out.contains("dry run: nothing changed"), "{out}");
    let (_, doc) = json(dir.path(), &["ls"]);
    assert_eq!(
        doc["managers"][0]["caches"][1]["entries"], 3,
        "dry run changed nothing"
    );

    let (code, doc) = json(dir.path(), &["evict", "--larger-than", "61B"]);
    assert_eq!(code, 0);
    assert_eq!(doc["dry_run"], false);
    let evicted: Vec<&str> = doc["evicted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cache"].as_str().unwrap())
        .collect();
    assert!(
        evicted.contains(&"app/raw") && evicted.contains(&"app/derived"),
        "{doc}"
    );
    let (_, doc) = json(dir.path(), &["ls"]);
    assert_eq!(doc["managers"][0]["caches"][1]["entries"], 0);
    assert_eq!(doc["managers"][0]["caches"][1]["invalidated"], true);

    let (code, _, err) = run(dir.path(), &["evict"]);
    assert_eq!(code, 2);
    assert!(err.contains("--older-than"), "{err}");
    let (code, out, _) = run(dir.path(), &["evict", "--older-than", "7d"]);
    assert_eq!(code, 0, "nothing is a week old");
    assert_eq!(out, "nothing to evict\n");
}

#[test]
fn evict_by_age_clears_what_was_saved_long_ago() {
    let dir = tempfile::tempdir().unwrap();
    let (_, other) = populate(dir.path());
    let path = other.cache_file_path("solo").unwrap();
    let eight_days = std::time::Duration::from_secs(8 * 86_400);
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(std::time::SystemTime::now() - eight_days)
        .unwrap();
    drop(file);
    let (code, out, _) = run(dir.path(), &["evict", "--older-than", "7d"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("cleared other/solo ("), "{out}");
    assert!(out.contains("saved 8d ago"), "{out}");
    assert!(!out.contains("app/"), "only the old file: {out}");
    let (_, doc) = json(dir.path(), &["ls"]);
    assert_eq!(doc["managers"][1]["caches"][0]["entries"], 0);

    let (code, doc) = json(dir.path(), &["clear", "app/raw"]);
    assert_eq!(code, 0);
    assert_eq!(doc, serde_json::json!({"cleared": ["app/raw"]}));
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path());
    let both = manager(dir.path(), "both");
    let c = both.register_cache::<u32, u32>("raw").unwrap();
    c.insert(1, 1);
    c.save().unwrap();
    let (code, _, err) = run(dir.path(), &["clear", "raw"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("app/raw, both/raw") && err.contains("MANAGER/CACHE"),
        "{err}"
    );
    let (code, _, err) = run(dir.path(), &["verify", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no cache `nope`"), "{err}");
    let (code, _, _) = run(dir.path(), &["--bogus"]);
    assert_eq!(code, 2);
    let (code, _, _) = run(dir.path(), &["evict", "--older-than", "7 fortnights"]);
    assert_eq!(code, 2);
    let (code, out, _) = run(dir.path(), &["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("verify"), "{out}");
}

#[test]
fn verify_reads_the_journal_as_a_load_would() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = populate(dir.path());
    let raw = app.registered_cache::<u64, u64>("raw").unwrap();
    for k in [10, 11] {
        raw.insert(k, k);
        raw.save().unwrap(); // appended to the journal
    }
    let journal = app.directory().join("raw.journal");
    let whole = std::fs::read(&journal).unwrap();
    let (code, out, _) = run(dir.path(), &["verify", "app/raw"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 entries, 2 saves in the journal"), "{out}");
    let (_, doc) = json(dir.path(), &["ls"]);
    let raw_row = &doc["managers"][0]["caches"][1];
    assert_eq!(raw_row["journal_bytes"], whole.len() as u64);
    let (_, out, _) = run(dir.path(), &["ls"]);
    let raw_line = out.lines().find(|l| l.starts_with("app/raw ")).unwrap();
    assert!(
        raw_line.contains(" 3+ "),
        "saves appended since the snapshot: {out}"
    );

    // A save cut off half-way: its frame is dropped at the next load, nothing is damaged.
    std::fs::write(&journal, &whole[..whole.len() - 3]).unwrap();
    let (code, out, _) = run(dir.path(), &["verify", "app/raw"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 save in the journal; a torn last frame"),
        "{out}"
    );

    // Damage before the last frame: a load refuses the journal, and so does verify.
    let mut damaged = whole.clone();
    damaged[40 + 8 + 2] ^= 0x10; // inside the first frame's body
    std::fs::write(&journal, &damaged).unwrap();
    let (code, out, _) = run(dir.path(), &["verify", "app/raw"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("damaged") && out.contains("raw.journal"),
        "{out}"
    );
}

#[test]
fn graph_verify_and_ls_count_the_graph_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = populate(dir.path());
    let raw = app.registered_cache::<u64, u64>("raw").unwrap();
    let derived = app.registered_cache::<u64, String>("derived").unwrap();
    derived.get_or_insert_with(7, || format!("value {}", raw.get_or_insert_with(7, || 70)));
    app.save_all_cache_contents().unwrap(); // appended to the graph's journal
    let journal = app.directory().join(".graph.journal");
    let whole = std::fs::read(&journal).unwrap();

    let (code, out, _) = run(dir.path(), &["graph", "app"]);
    assert_eq!(code, 0);
    assert!(out.contains("8 entries recorded"), "{out}");
    assert!(out.contains("; 1 save in its journal)"), "{out}");
    let (_, doc) = json(dir.path(), &["graph", "app"]);
    let files = &doc["managers"][0]["files"];
    assert_eq!(files["journal_frames"], 1);
    assert_eq!(files["journal_bytes"], whole.len() as u64);
    let (_, doc) = json(dir.path(), &["ls"]);
    assert_eq!(doc["managers"][0]["graph"]["journal_frames"], 1);

    let (code, out, _) = run(dir.path(), &["verify"]);
    assert_eq!(code, 0, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("app/.graph.deps"))
        .unwrap();
    assert!(
        line.contains("ok") && line.contains("8 entries recorded; 1 save in its journal"),
        "{out}"
    );

    // A torn last frame: reported, dropped at the next load, not damage.
    std::fs::write(&journal, &whole[..whole.len() - 3]).unwrap();
    let (code, out, _) = run(dir.path(), &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("6 entries recorded; a torn last frame"),
        "{out}"
    );

    // Damage before the last frame: the graph is refused, as a program would refuse it.
    let mut twice = whole.clone();
    twice.extend_from_slice(&whole[22..]);
    twice[30] ^= 0x01;
    std::fs::write(&journal, &twice).unwrap();
    let (code, out, _) = run(dir.path(), &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("problem:") && out.contains(".graph.journal") && out.contains("damage"),
        "{out}"
    );
}
