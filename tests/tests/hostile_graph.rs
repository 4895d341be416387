//! Damaged and hostile dependency graph files (`<manager dir>/.graph.deps`, and its journal
//! `.graph.journal`): bit flips,
//! truncations, extensions, random bytes. Loading a manager over one never panics: a warning
//! names the manager and the file, and since what each entry read is lost, no entry is served
//! as if it had read nothing: the caches start over and record their inputs anew.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cacheman::{Cache, CacheManager};
use proptest::prelude::*;
use tests::support::{capture_warnings, warnings_containing};

fn warnings_about(manager: &str) -> Vec<String> {
    warnings_containing(&format!("manager `{manager}`"))
}

/// A manager name no other test case uses, so that warnings can be told apart.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("g{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

const KEYS: u64 = 5;

/// What `raw` computes its entries from (changed by the tests behind the caches' backs).
type Source = Arc<Mutex<HashMap<u64, u64>>>;

/// `raw` (read from `source`) read by `derived` (ten times it), with counted bodies.
struct Pair {
    raw: Cache<u64, u64>,
    derived: Cache<u64, u64>,
    source: Arc<Mutex<HashMap<u64, u64>>>,
    derived_runs: AtomicU64,
}

impl Pair {
    fn open(manager: &CacheManager, source: &Arc<Mutex<HashMap<u64, u64>>>) -> Pair {
        Pair {
            raw: manager.register_cache("raw").unwrap(),
            derived: manager.register_cache("derived").unwrap(),
            source: Arc::clone(source),
            derived_runs: AtomicU64::new(0),
        }
    }

    fn derived(&self, key: u64) -> u64 {
        self.derived.get_or_insert_with(key, || {
            self.derived_runs.fetch_add(1, Ordering::SeqCst);
            let raw = self.raw.get_or_insert_with(key, || {
                self.source.lock().unwrap().get(&key).copied().unwrap_or(0)
            });
            raw * 10
        })
    }

    fn save(&self) {
        self.raw.save().unwrap();
        self.derived.save().unwrap();
    }
}

/// A manager directory whose caches and graph were saved, and the graph file's path.
fn saved(manager: &str) -> (tempfile::TempDir, PathBuf, Arc<Mutex<HashMap<u64, u64>>>) {
    let dir = tempfile::tempdir().unwrap();
    let source: Arc<Mutex<HashMap<u64, u64>>> =
        Arc::new(Mutex::new((0..KEYS).map(|k| (k, k + 1)).collect()));
    let m = CacheManager::new(manager, dir.path());
    let pair = Pair::open(&m, &source);
    for key in 0..KEYS {
        assert_eq!(pair.derived(key), (key + 1) * 10);
    }
    pair.save();
    let graph = graph_path(&m);
    assert!(graph.exists(), "the graph was saved beside the caches");
    (dir, graph, source)
}

fn graph_path(manager: &CacheManager) -> PathBuf {
    manager.directory().join(".graph.deps")
}

/// Opens the manager over a damaged graph and checks what every damaged graph must give.
fn reopen_damaged(name: &str, dir: &Path, graph: &Path, source: &Arc<Mutex<HashMap<u64, u64>>>) {
    capture_warnings();
    let manager = CacheManager::new(name, dir);
    let pair = Pair::open(&manager, source);
    let warnings = warnings_about(name);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&graph.display().to_string())),
        "no warning names the damaged graph: {warnings:?}"
    );
    // The source changed while the graph was damaged: nothing may answer from before.
    for key in 0..KEYS {
        source.lock().unwrap().insert(key, key + 100);
    }
    for key in 0..KEYS {
        assert_eq!(pair.derived(key), (key + 100) * 10, "key {key} from before");
    }
    // And the dependencies are recorded anew: a changed input reaches what read it.
    pair.raw.insert(3, 7);
    assert_eq!(
        pair.derived(3),
        70,
        "a dependency recorded after the damage is followed"
    );
    pair.save();
    drop(pair);

    // The next process finds a good graph and no reason to warn again.
    let manager = CacheManager::new(name, dir);
    let before = warnings_about(name).len();
    let pair = Pair::open(&manager, source);
    assert_eq!(pair.derived(1), 1010);
    assert_eq!(pair.derived(3), 70);
    assert_eq!(
        pair.derived_runs.load(Ordering::SeqCst),
        0,
        "served from the files"
    );
    assert_eq!(
        warnings_about(name).len(),
        before,
        "{:?}",
        warnings_about(name)
    );
}

#[test]
fn a_damaged_graph_invalidates_what_it_can_no_longer_vouch_for() {
    let name = unique_name();
    let (dir, graph, source) = saved(&name);
    let mut bytes = std::fs::read(&graph).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&graph, &bytes).unwrap();
    reopen_damaged(&name, dir.path(), &graph, &source);
}

#[test]
fn a_graph_from_another_format_version_is_not_trusted_either() {
    let name = unique_name();
    let (dir, graph, source) = saved(&name);
    let mut bytes = std::fs::read(&graph).unwrap();
    bytes[8] = bytes[8].wrapping_add(1); // the version field follows the 8-byte magic
    std::fs::write(&graph, &bytes).unwrap();
    reopen_damaged(&name, dir.path(), &graph, &source);
}

/// How a graph file is damaged.
#[derive(Debug, Clone)]
enum Damage {
    Flip { at: prop::sample::Index, bit: u8 },
    Truncate { at: prop::sample::Index },
    Extend { tail: Vec<u8> },
    Replace { bytes: Vec<u8> },
}

impl Damage {
    /// Damages the file at `path` so.
    fn apply_to(self, path: &Path) {
        let mut bytes = std::fs::read(path).unwrap();
        match self {
            Damage::Flip { at, bit } => {
                let at = at.index(bytes.len());
                bytes[at] ^= 1 << bit;
            }
            Damage::Truncate { at } => bytes.truncate(at.index(bytes.len())),
            Damage::Extend { tail } => bytes.extend_from_slice(&tail),
            Damage::Replace { bytes: random } => bytes = random,
        }
        std::fs::write(path, &bytes).unwrap();
    }
}

fn damage_strategy() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(at, bit)| Damage::Flip { at, bit }),
        any::<prop::sample::Index>().prop_map(|at| Damage::Truncate { at }),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(|tail| Damage::Extend { tail }),
        prop::collection::vec(any::<u8>(), 0..256).prop_map(|bytes| Damage::Replace { bytes }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn damaged_graphs_warn_and_start_over_never_panic(damage in damage_strategy()) {
        let name = unique_name();
        let (dir, graph, source) = saved(&name);
        damage.apply_to(&graph);
        reopen_damaged(&name, dir.path(), &graph, &source);
    }
}

/// `saved`, then two more rounds of computations, each saved: the graph's journal
/// (`.graph.journal`) then holds two frames, keys 5 and 6, then key 7; with where each ends.
fn saved_with_journal(manager: &str) -> (tempfile::TempDir, PathBuf, Source, [usize; 2]) {
    let (dir, graph, source) = saved(manager);
    let snapshot = std::fs::read(&graph).unwrap();
    let journal = graph.with_file_name(".graph.journal");
    source.lock().unwrap().extend((5..8).map(|k| (k, k + 1)));
    let m = CacheManager::new(manager, dir.path());
    let pair = Pair::open(&m, &source);
    let mut ends = [0; 2];
    for (round, keys) in [5..7, 7..8].into_iter().enumerate() {
        for key in keys {
            assert_eq!(pair.derived(key), (key + 1) * 10);
        }
        pair.save();
        ends[round] = std::fs::metadata(&journal).unwrap().len() as usize;
    }
    assert_eq!(std::fs::read(&graph).unwrap(), snapshot, "saves appended");
    assert!(ends[0] < ends[1]);
    (dir, journal, source, ends)
}

/// Where the first frame of the graph journal at `path` starts: after its header, 22 bytes
/// (magic, version, generation, checksum), checked against the first frame's length field
/// and where it ends, `first_end` (frames are a 4-byte little-endian length, a 4-byte
/// checksum and the body).
fn first_frame_at(path: &Path, first_end: usize) -> usize {
    const HEADER: usize = 8 + 2 + 8 + 4;
    let bytes = std::fs::read(path).unwrap();
    let len = u32::from_le_bytes(bytes[HEADER..HEADER + 4].try_into().unwrap()) as usize;
    assert_eq!(
        HEADER + 8 + len,
        first_end,
        "the first frame starts at byte {HEADER}"
    );
    HEADER
}

/// Opens the manager over a journal whose last frame is torn: the warning names the journal,
/// and what the snapshot and the frames before the torn one recorded is still followed.
fn reopen_torn(name: &str, dir: &Path, journal: &Path, source: &Arc<Mutex<HashMap<u64, u64>>>) {
    let manager = CacheManager::new(name, dir);
    let pair = Pair::open(&manager, source);
    for key in 0..KEYS {
        assert_eq!(pair.derived(key), (key + 1) * 10);
    }
    assert_eq!(
        pair.derived_runs.load(Ordering::SeqCst),
        0,
        "served from the files"
    );
    pair.raw.insert(2, 50);
    assert_eq!(
        pair.derived(2),
        500,
        "a change follows the snapshot's record"
    );
    pair.save();
    drop(pair);
    // The next save cut the torn frame off: no warning the next time.
    let before = warnings_about(name).len();
    let manager = CacheManager::new(name, dir);
    let pair = Pair::open(&manager, source);
    assert_eq!(pair.derived(2), 500);
    assert_eq!(
        warnings_about(name).len(),
        before,
        "{:?}",
        warnings_about(name)
    );
    assert!(journal.exists());
}

#[test]
fn damage_before_the_graph_journal_s_last_frame_is_a_damaged_graph() {
    let name = unique_name();
    let (dir, journal, source, [first, _]) = saved_with_journal(&name);
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes[first - 1] ^= 0x01; // the first frame's last byte: its checksum fails
    std::fs::write(&journal, &bytes).unwrap();
    reopen_damaged(&name, dir.path(), &journal, &source);
    assert!(
        warnings_about(&name)
            .iter()
            .any(|w| w.contains("damage before the last frame")),
        "{:?}",
        warnings_about(&name)
    );
}

#[test]
fn a_torn_last_frame_of_the_graph_journal_is_dropped_and_the_frames_before_it_kept() {
    let name = unique_name();
    let (dir, journal, source, [first, second]) = saved_with_journal(&name);
    let bytes = std::fs::read(&journal).unwrap();
    std::fs::write(&journal, &bytes[..(first + second) / 2]).unwrap();
    capture_warnings();
    let manager = CacheManager::new(&name, dir.path());
    let pair = Pair::open(&manager, &source);
    let warnings = warnings_about(&name);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("is torn") && w.contains(&journal.display().to_string())),
        "{warnings:?}"
    );
    // Key 5 was recorded in the first frame, which is whole: a change of raw[5] reaches it.
    assert_eq!(pair.derived(5), 60);
    pair.raw.insert(5, 9);
    assert_eq!(pair.derived(5), 90, "the first frame's record is followed");
    assert_eq!(pair.derived_runs.load(Ordering::SeqCst), 1);
    drop(pair);
    reopen_torn(&name, dir.path(), &journal, &source);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn damaged_graph_journals_are_torn_tails_or_damaged_graphs_never_a_panic(
        damage in damage_strategy()
    ) {
        let name = unique_name();
        let (dir, journal, source, [first, _]) = saved_with_journal(&name);
        // A cut between two frames (after the header, or after the first frame) leaves a
        // shorter journal of whole frames, which a load cannot tell from one that was never
        // longer: it is read silently.
        let between_frames = match &damage {
            Damage::Truncate { at } => {
                let cut = at.index(std::fs::metadata(&journal).unwrap().len() as usize);
                cut == first || cut == first_frame_at(&journal, first)
            }
            _ => false,
        };
        damage.apply_to(&journal);
        // Which of the two it is, as a load tells it (a warning names the journal either way).
        capture_warnings();
        let probe = tempfile::tempdir().unwrap();
        let copy = probe.path().join(&name);
        std::fs::create_dir(&copy).unwrap();
        for entry in std::fs::read_dir(dir.path().join(&name)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
        let probe_name = format!("{name}p");
        std::fs::rename(&copy, probe.path().join(&probe_name)).unwrap();
        let manager = CacheManager::new(&probe_name, probe.path());
        drop(Pair::open(&manager, &source));
        let warnings = warnings_about(&probe_name);
        let journal_named = probe.path().join(&probe_name).join(".graph.journal");
        if between_frames {
            prop_assert!(
                !warnings.iter().any(|w| w.contains(&journal_named.display().to_string())),
                "a journal cut between frames is whole: {:?}", warnings
            );
            reopen_torn(&name, dir.path(), &journal, &source);
            return Ok(());
        }
        prop_assert!(
            warnings.iter().any(|w| w.contains(&journal_named.display().to_string())),
            "no warning names the journal: {:?}", warnings
        );
        // ("not a torn append" is said of damage.)
        if warnings.iter().any(|w| w.contains("is torn")) {
            reopen_torn(&name, dir.path(), &journal, &source);
        } else {
            reopen_damaged(&name, dir.path(), &journal, &source);
        }
    }
}
