//! The dependency graph's journal (issue 16): the bytes a save writes to the graph when 10
//! entries' nodes changed in a graph of 1,000,000 recorded entries (500,000 `derived` entries,
//! each read one of 500,000 `raw` entries). Before the journal every save rewrote
//! `.graph.deps` whole, so it wrote the snapshot's size; now it appends one frame to
//! `.graph.journal`. Each round changes 5 `raw` entries (`insert`) and recomputes the 5
//! `derived` entries that read them (10 nodes), then saves both caches; the graph's part of
//! the save is the journal's growth. The whole rewrite is the snapshot the first save wrote:
//! what every save wrote before, and what a compaction writes now (once the journal is larger
//! than the snapshot and 1 MiB). Rounds alternate with rounds whose save first writes the
//! graph whole (`CacheManager::compact_graph`), as every save did before: the time of the two
//! kinds of save, in turn, includes the caches' own appends and bookkeeping in both.
//!
//! `cargo run --release -p benches --bin graph_save [ROUNDS] [ENTRIES]` prints one JSON object.

use std::path::Path;
use std::time::Instant;

use cacheman::{AutoSync, CacheManager};

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn median(mut figures: Vec<f64>) -> f64 {
    figures.sort_by(f64::total_cmp);
    figures[figures.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(9);
    let entries: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("graph_save", dir.path());
    manager.set_autosync(AutoSync::disabled());
    let raw = manager.register_cache::<u64, u64>("raw").unwrap();
    let derived = manager.register_cache::<u64, u64>("derived").unwrap();
    for key in 0..entries / 2 {
        derived.get_or_insert_with(key, || raw.get_or_insert_with(key, || key) + 1);
    }
    let snapshot = dir.path().join("graph_save/.graph.deps");
    let journal = dir.path().join("graph_save/.graph.journal");
    let start = Instant::now();
    manager.save_all_cache_contents().unwrap();
    let first_save_ms = start.elapsed().as_secs_f64() * 1e3;
    let whole = len(&snapshot);

    // In turn: a save of 10 changed nodes as it is now (an append), and the same after the
    // graph was written whole (`compact_graph`): what every save did before the journal.
    let (mut appended, mut append_ms, mut rewrite_ms) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=2 * rounds {
        for key in (round * 5)..(round * 5 + 5) {
            raw.insert(key, key + round * 1_000_000);
            let value = derived.get_or_insert_with(key, || raw.get(&key).unwrap() + 1);
            assert_eq!(value, key + round * 1_000_000 + 1, "recomputed");
        }
        let before = len(&journal);
        let start = Instant::now();
        if round % 2 == 0 {
            manager.compact_graph().unwrap();
        }
        manager.save_all_cache_contents().unwrap();
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if round % 2 == 0 {
            rewrite_ms.push(ms);
        } else {
            append_ms.push(ms);
            // A new journal starts with its 22-byte header; count the frame alone.
            appended.push(len(&journal).saturating_sub(before.max(22)) as f64);
        }
    }
    let per_save = median(appended);
    let (append_ms, rewrite_ms) = (median(append_ms), median(rewrite_ms));
    println!(
        "{{\"entries\": {entries}, \"rounds\": {rounds}, \"nodes_changed_per_save\": 10, \
         \"graph_bytes_appended_per_save\": {per_save:.0}, \
         \"graph_bytes_of_a_whole_rewrite\": {whole}, \"bytes_ratio\": {:.7}, \
         \"save_appending_ms_median\": {append_ms:.1}, \
         \"save_rewriting_the_graph_ms_median\": {rewrite_ms:.1}, \"time_ratio\": {:.3}, \
         \"first_save_ms\": {first_save_ms:.0}}}",
        per_save / whole as f64,
        append_ms / rewrite_ms,
    );
}
