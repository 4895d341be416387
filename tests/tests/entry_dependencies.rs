//! Per-entry dependencies: what an entry read while it was computed is recorded, and a change
//! recomputes exactly what was derived from it, with early cutoff, across restarts (a new
//! manager on the same directory) and between managers sharing the files.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cacheman::{Cache, CacheManager, CacheOptions, Staleness};

/// Counts how often each body ran.
#[derive(Default, Clone)]
struct Runs(Arc<[AtomicU64; 4]>);

impl Runs {
    fn bump(&self, i: usize) {
        self.0[i].fetch_add(1, Ordering::SeqCst);
    }
    fn take(&self) -> [u64; 4] {
        std::array::from_fn(|i| self.0[i].swap(0, Ordering::SeqCst))
    }
}

/// `docs` (document text) read by `counts` (word counts) and `lengths`; `summary` reads both
/// of those: a diamond.
struct Pipeline {
    docs: Cache<String, String>,
    counts: Cache<String, usize>,
    lengths: Cache<String, usize>,
    summary: Cache<String, String>,
    texts: Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
    runs: Runs,
}

impl Pipeline {
    fn open(manager: &CacheManager) -> Pipeline {
        Pipeline {
            docs: manager.register_cache("docs").unwrap(),
            counts: manager.register_cache("counts").unwrap(),
            lengths: manager.register_cache("lengths").unwrap(),
            summary: manager.register_cache("summary").unwrap(),
            texts: Default::default(),
            runs: Runs::default(),
        }
    }

    fn set_text(&self, path: &str, text: &str) {
        self.texts.lock().unwrap().insert(path.into(), text.into());
    }

    fn doc(&self, path: &str) -> String {
        self.docs.get_or_insert_with(path.into(), || {
            self.runs.bump(0);
            self.texts
                .lock()
                .unwrap()
                .get(path)
                .cloned()
                .unwrap_or_default()
        })
    }

    fn count(&self, path: &str) -> usize {
        self.counts.get_or_insert_with(path.into(), || {
            self.runs.bump(1);
            self.doc(path).split_whitespace().count()
        })
    }

    fn length(&self, path: &str) -> usize {
        self.lengths.get_or_insert_with(path.into(), || {
            self.runs.bump(2);
            self.doc(path).len()
        })
    }

    fn summary(&self, path: &str) -> String {
        self.summary.get_or_insert_with(path.into(), || {
            self.runs.bump(3);
            format!("{} words, {} bytes", self.count(path), self.length(path))
        })
    }
}

fn manager(dir: &tempfile::TempDir) -> CacheManager {
    CacheManager::new("entries", dir.path())
}

#[test]
fn invalidating_one_entry_recomputes_only_what_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline::open(&manager(&dir));
    for i in 0..100 {
        p.set_text(&format!("doc{i}"), "one two three");
        p.count(&format!("doc{i}"));
    }
    assert_eq!(p.runs.take(), [100, 100, 0, 0]);

    p.set_text("doc7", "one two three four");
    p.docs.invalidate_key(&"doc7".to_owned()).unwrap();
    assert_eq!(p.counts.len(), 99, "only the entry that read doc7 leaves");
    for i in 0..100 {
        p.count(&format!("doc{i}"));
    }
    assert_eq!(p.runs.take(), [1, 1, 0, 0]);
    assert_eq!(p.count("doc7"), 4);
}

#[test]
fn a_diamond_recomputes_its_tip_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline::open(&manager(&dir));
    p.set_text("a", "x y");
    assert_eq!(p.summary("a"), "2 words, 3 bytes");
    assert_eq!(p.runs.take(), [1, 1, 1, 1]);

    p.set_text("a", "x y z");
    p.docs.invalidate_key(&"a".to_owned()).unwrap();
    assert_eq!(p.summary("a"), "3 words, 5 bytes");
    assert_eq!(p.runs.take(), [1, 1, 1, 1], "each entry once, the tip once");
}

#[test]
fn an_input_recomputed_to_the_same_value_stops_the_cascade() {
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline::open(&manager(&dir));
    p.set_text("a", "x y");
    p.summary("a");
    p.runs.take();

    // The document is invalidated but comes back the same: nothing downstream runs again.
    p.docs.invalidate_key(&"a".to_owned()).unwrap();
    assert_eq!(p.doc("a"), "x y");
    assert_eq!(p.summary("a"), "2 words, 3 bytes");
    assert_eq!(p.runs.take(), [1, 0, 0, 0]);

    // A new text with the same word count: `counts` runs and is equal, so `summary` would be
    // checked again only through `lengths`, which changed.
    p.set_text("a", "x yy");
    p.docs.invalidate_key(&"a".to_owned()).unwrap();
    p.doc("a");
    assert_eq!(p.count("a"), 2);
    assert_eq!(p.summary("a"), "2 words, 4 bytes");
    assert_eq!(p.runs.take(), [1, 1, 1, 1]);
}

#[test]
fn a_value_stored_by_hand_makes_its_readers_stale() {
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline::open(&manager(&dir));
    p.set_text("a", "x y");
    p.count("a");
    p.docs.insert("a".into(), "x y".into()); // the same value: nothing changes
    assert!(p.counts.contains_key(&"a".to_owned()));
    p.docs.insert("a".into(), "x y z w".into());
    assert!(!p.counts.contains_key(&"a".to_owned()));
    assert_eq!(
        p.counts.explain(&"a".to_owned()).changed_inputs().count(),
        1
    );
    assert_eq!(p.count("a"), 4);
}

#[test]
fn whole_cache_invalidation_reaches_recorded_dependents_without_depends_on() {
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(&dir);
    let p = Pipeline::open(&manager);
    p.set_text("a", "x");
    p.count("a");
    let unrelated: Cache<u32, u32> = manager.register_cache("unrelated").unwrap();
    unrelated.insert(1, 1);
    manager.invalidate_cache("docs").unwrap();
    assert!(p.counts.is_empty());
    assert_eq!(unrelated.len(), 1);
}

#[test]
fn recorded_dependencies_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let p = Pipeline::open(&manager(&dir));
        p.set_text("a", "x y");
        p.set_text("b", "x y");
        p.summary("a");
        p.summary("b");
        p.docs.save().unwrap();
        p.counts.save().unwrap();
        p.lengths.save().unwrap();
        p.summary.save().unwrap();
    }
    // A later process invalidates one document before anything is loaded.
    let second = manager(&dir);
    second.invalidate_entry("docs", "a").unwrap();
    drop(second);

    let p = Pipeline::open(&manager(&dir));
    p.set_text("a", "x y z");
    p.set_text("b", "x y");
    assert_eq!(p.summary("b"), "2 words, 3 bytes");
    assert_eq!(p.runs.take(), [0, 0, 0, 0], "b is served from the files");
    assert_eq!(p.summary("a"), "3 words, 5 bytes");
    assert_eq!(p.runs.take(), [1, 1, 1, 1]);
}

#[test]
fn a_tracked_file_edited_between_runs_recomputes_only_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("f{i}.txt")))
        .collect();
    for file in &files {
        std::fs::write(file, "a b").unwrap();
    }
    let runs = Runs::default();
    let run_once = |expect_runs: u64| {
        let manager = manager(&dir);
        let words: Cache<String, usize> = manager.register_cache("words").unwrap();
        for file in &files {
            words.get_or_insert_with(file.display().to_string(), || {
                runs.bump(0);
                cacheman::track_file(file);
                std::fs::read_to_string(file)
                    .unwrap()
                    .split_whitespace()
                    .count()
            });
        }
        words.save().unwrap();
        assert_eq!(runs.take()[0], expect_runs);
        words
    };
    run_once(3);
    run_once(0);
    // Same contents, new modification time: no recomputation (contents are compared).
    std::fs::write(&files[0], "a b").unwrap();
    run_once(0);
    std::fs::write(&files[1], "a b c").unwrap();
    let words = run_once(1);
    assert_eq!(words.get(&files[1].display().to_string()), Some(3));
}

#[test]
fn a_tracked_value_that_changes_recomputes_what_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(&dir);
    let greetings: Cache<String, String> = manager.register_cache("greetings").unwrap();
    let lang = std::sync::Mutex::new("en");
    let greet = |name: &str| {
        greetings.get_or_insert_with(name.into(), || {
            let lang = *lang.lock().unwrap();
            cacheman::track_value("lang", lang);
            format!("{lang}: hello {name}")
        })
    };
    assert_eq!(greet("ada"), "en: hello ada");
    *lang.lock().unwrap() = "fr";
    cacheman::track_value("lang", "fr"); // outside a computation: sets the current value
    assert_eq!(greet("ada"), "fr: hello ada");
}

#[test]
fn explain_names_the_inputs_and_the_one_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let p = Pipeline::open(&manager(&dir));
    p.set_text("a", "x");
    p.summary("a");
    let why = p.summary.explain(&"a".to_owned());
    assert_eq!(why.staleness, Staleness::Fresh);
    let read: Vec<String> = why.inputs.iter().map(|i| i.from.to_string()).collect();
    assert_eq!(read.len(), 2);
    assert!(
        read.iter().any(|r| r.contains("cache `counts`")),
        "{read:?}"
    );
    p.counts.insert("a".into(), 99);
    let why = p.summary.explain(&"a".to_owned());
    assert_eq!(why.staleness, Staleness::Suspect);
    let changed: Vec<_> = why.changed_inputs().collect();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].from.to_string().contains("counts"), "{why}");
    assert_eq!(
        p.docs.explain(&"a".to_owned()).staleness,
        Staleness::Fresh,
        "read, with no inputs of its own"
    );
}

#[test]
fn two_managers_on_one_directory_see_each_others_invalidations() {
    let dir = tempfile::tempdir().unwrap();
    let one = Pipeline::open(&manager(&dir));
    one.set_text("a", "x");
    one.set_text("b", "x");
    one.count("a");
    one.count("b");
    one.docs.save().unwrap();
    one.counts.save().unwrap();
    one.runs.take();

    let other_manager = manager(&dir);
    let two = Pipeline::open(&other_manager);
    two.set_text("a", "x y");
    two.docs.invalidate_key(&"a".to_owned()).unwrap();
    assert_eq!(two.count("a"), 2);
    two.docs.save().unwrap();
    two.counts.save().unwrap();

    // The first one sees it at its next save (or load), like a whole-cache invalidation.
    one.set_text("a", "x y");
    one.counts.save().unwrap();
    assert!(!one.counts.contains_key(&"a".to_owned()));
    assert!(one.counts.contains_key(&"b".to_owned()));
}

#[test]
fn recursion_is_an_edge_inside_one_cache() {
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(&dir);
    let fib: Cache<u64, u64> = manager.register_cache("fib").unwrap();
    fn fib_of(cache: &Cache<u64, u64>, n: u64) -> u64 {
        cache.get_or_insert_with(n, || {
            if n < 2 {
                n
            } else {
                fib_of(cache, n - 1) + fib_of(cache, n - 2)
            }
        })
    }
    assert_eq!(fib_of(&fib, 30), 832_040);
    fib.invalidate_key(&20).unwrap();
    assert!(fib.contains_key(&19));
    assert!(!fib.contains_key(&25), "25 read 20 through 21..24");
    assert_eq!(fib_of(&fib, 30), 832_040);
}

#[test]
fn memory_caches_record_too() {
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(&dir);
    let options = CacheOptions::new().persistent(false);
    let raw: Cache<u32, u32> = manager
        .register_memory_cache("raw", options.clone())
        .unwrap();
    let derived: Cache<u32, u32> = manager.register_memory_cache("derived", options).unwrap();
    derived.get_or_insert_with(1, || raw.get_or_insert_with(1, || 2) * 10);
    raw.invalidate_key(&1).unwrap();
    assert!(derived.is_empty());
    assert!(
        !dir.path().join("entries/.graph.deps").exists(),
        "nothing to persist"
    );
}

#[test]
fn reads_through_get_and_async_computations_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(&dir);
    let prices: Cache<String, u64> = manager.register_cache("prices").unwrap();
    let totals: Cache<String, u64> = manager.register_cache("totals").unwrap();
    prices.insert("apple".into(), 3);
    prices.insert("pear".into(), 5);
    let total = |basket: &str| {
        pollster::block_on(totals.get_or_insert_with_async(basket.into(), || async {
            let mut sum = 0;
            for item in basket.split('+') {
                // A plain `get`, inside an async computation that awaits in between.
                sum += prices.get(&item.to_owned()).unwrap_or(0);
                std::future::ready(()).await;
            }
            sum
        }))
    };
    assert_eq!(total("apple+pear"), 8);
    assert_eq!(total("apple"), 3);
    assert_eq!(totals.explain(&"apple+pear".to_owned()).inputs.len(), 2);
    prices.insert("pear".into(), 6);
    assert!(totals.contains_key(&"apple".to_owned()));
    assert!(!totals.contains_key(&"apple+pear".to_owned()));
    assert_eq!(total("apple+pear"), 9);
}

#[test]
fn a_computation_whose_input_changes_meanwhile_is_returned_but_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(&dir);
    let raw: Cache<u32, u32> = manager.register_cache("raw").unwrap();
    let derived: Cache<u32, u32> = manager.register_cache("derived").unwrap();
    raw.insert(1, 10);
    let value = derived.get_or_insert_with(1, || {
        let seen = raw.get(&1).unwrap();
        raw.insert(1, 20); // the input changes while this entry is being computed
        seen + 1
    });
    assert_eq!(value, 11);
    assert!(
        !derived.contains_key(&1),
        "derived from a value that is gone"
    );
    assert_eq!(
        derived.get_or_insert_with(1, || raw.get(&1).unwrap() + 1),
        21
    );
}

#[test]
fn the_record_of_entries_that_left_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(&dir);
    let raw: Cache<u64, u64> = manager.register_cache("raw").unwrap();
    // Bounded: old entries are evicted without the graph being told.
    let derived: Cache<u64, u64> = manager
        .register_custom_cache("derived", CacheOptions::new().capacity(100))
        .unwrap();
    raw.insert(0, 1);
    for n in 0..20_000 {
        derived.get_or_insert_with(n, || raw.get(&0).unwrap() + n);
    }
    derived.save().unwrap();
    let graph = std::fs::metadata(dir.path().join("entries/.graph.deps"))
        .unwrap()
        .len();
    // 100 entries of 1 input each (and raw's node) stay recorded, not 20,000.
    assert!(graph < 20_000, "the graph file holds {graph} bytes");
    raw.insert(0, 2);
    assert!(derived.is_empty(), "every held entry read raw[0]");
}

#[test]
fn a_save_that_appends_forgets_the_recorded_entries_its_changes_removed() {
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(&dir);
    let raw: Cache<u64, u64> = manager.register_cache("raw").unwrap();
    let derived: Cache<u64, u64> = manager.register_cache("derived").unwrap();
    raw.insert(0, 1);
    for n in 0..10 {
        derived.get_or_insert_with(n, || raw.get(&0).unwrap() + n);
    }
    // The first save writes a whole snapshot; the next appends what changed.
    derived.save().unwrap();
    let recorded = || {
        let graph = cacheman::inspect::read_manager(&dir.path().join("entries")).graph;
        graph.expect("a graph file").entries_per_cache["derived"]
    };
    assert_eq!(recorded(), 10);
    // `remove` does not tell the graph: the save finds the keys among its changes.
    for n in 0..4 {
        derived.remove(&n);
    }
    derived.save().unwrap();
    assert!(
        dir.path().join("entries/derived.journal").exists(),
        "the save appended"
    );
    assert_eq!(
        recorded(),
        6,
        "the graph still records entries the file no longer has"
    );
}

#[test]
fn a_removed_or_cleared_entry_that_was_set_aside_is_not_served_again() {
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(&dir);
    let raw: Cache<u32, u32> = manager.register_cache("raw").unwrap();
    let derived: Cache<u32, u32> = manager.register_cache("derived").unwrap();
    for key in [1, 2] {
        derived.get_or_insert_with(key, || raw.get_or_insert_with(key, || 1) * 10);
        // Its input changes, then changes back: the entry is set aside, still valid.
        raw.insert(key, 2);
        raw.insert(key, 1);
    }
    derived.remove(&1);
    assert_eq!(derived.get(&1), None, "a removed entry came back");
    derived.clear();
    assert_eq!(derived.get(&2), None, "a cleared entry came back");
    assert_eq!(raw.get(&2), Some(1));
}

#[test]
fn entries_computed_past_a_thousand_keep_their_inputs() {
    // The recorded keys are pruned when their count reaches a power of two (from 1024): the
    // entry whose computation reached it must keep its inputs all the same.
    let dir = tempfile::tempdir().unwrap();
    let manager = manager(&dir);
    let raw: Cache<u32, u32> = manager.register_cache("raw").unwrap();
    let derived: Cache<u32, u32> = manager.register_cache("derived").unwrap();
    for key in 0..1100 {
        derived.get_or_insert_with(key, || raw.get_or_insert_with(0, || 1) + key);
    }
    raw.insert(0, 2);
    assert_eq!(
        derived.len(),
        0,
        "entries that read the changed input are still served"
    );
    assert_eq!(
        derived.get_or_insert_with(1050, || raw.get(&0).unwrap() + 1050),
        1052
    );
}
