//! A background compaction stopped half-way through writing its snapshot: saves of this
//! process and appends of another go on, and what they saved is all in the files after it.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::store::files::{Step, cache_path};
use crate::store::{Codec, FileStore, Identity};

/// Bound on every wait of these tests: long enough for a loaded machine, and a failure, not
/// a hang, when something waits for the compaction.
const BOUND: Duration = Duration::from_secs(30);

/// Stops the first write of a background compaction's snapshot until told to go on.
struct Gate {
    paused: AtomicBool,
    reached: Mutex<SyncSender<()>>,
    go: Mutex<Receiver<()>>,
}

fn in_compaction() -> bool {
    // The compaction's thread, or the writer thread of the snapshot it streams.
    matches!(
        std::thread::current().name(),
        Some("cacheman-compact" | "cacheman-save")
    )
}

type Cache = Arc<CacheInner<u64, String>>;

fn cache(dir: &std::path::Path, gate: Option<Arc<Gate>>) -> Cache {
    let identity = Identity::new::<u64, String>(Codec::Postcard, 0, false);
    // Only the gated cache compacts (two would race, and one give up).
    let mut store =
        FileStore::new("c", cache_path(dir, "c"), identity).with_compaction_from(u64::MAX);
    if let Some(gate) = gate {
        store = store
            .with_compaction_from(COMPACT_FROM)
            .with_steps(move |step| {
                if matches!(step, Step::Write(_))
                    && in_compaction()
                    && !gate.paused.swap(true, Ordering::SeqCst)
                {
                    let _ = gate.reached.lock().unwrap().send(());
                    let _ = gate.go.lock().unwrap().recv_timeout(BOUND);
                }
                Ok(())
            });
    }
    crate::lifecycle::append::tests::cache_on(store)
}

fn put(cache: &CacheInner<u64, String>, key: u64, value: &str) {
    on_maps!(cache, s, now => s.insert(key, value.to_owned(), now));
    cache.note_changes(1);
}

fn value_of(cache: &CacheInner<u64, String>, key: u64) -> Option<String> {
    cache
        .snapshot_rows()
        .into_iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, v, _)| v)
}

/// Runs `save` on a thread of its own and waits for it within [`BOUND`]; if it does not
/// return by then, lets the compaction go (so that the save can end) and fails.
fn returns_during_the_compaction(
    what: &str,
    go: &SyncSender<()>,
    save: impl FnOnce() + Send + 'static,
) {
    let (done, finished) = sync_channel(1);
    std::thread::spawn(move || {
        save();
        let _ = done.send(());
    });
    if finished.recv_timeout(BOUND).is_err() {
        let _ = go.send(());
        panic!("{what} waited for the background compaction");
    }
}

/// Keys whose values change in memory, unsaved, while the compaction copies them: enough
/// that the copy is far from done when the snapshot's first write stops (the copy then goes
/// on until the writer's queue is full, a megabyte or so, and waits).
const BULK: u64 = 100_000;

/// Compaction is due from here: below the bulk's append (10 MB), and more than half of it,
/// so that the compaction is not overdue (which would hold the save lock throughout).
const COMPACT_FROM: u64 = 6 << 20;

/// A value of 100 bytes or more, so that the bulk's snapshot takes 10 MB.
fn long(word: &str) -> String {
    word.repeat(100_usize.div_ceil(word.len()))
}

#[test]
fn saves_and_other_processes_appends_go_on_during_a_background_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (reached_tx, reached) = sync_channel(1);
    let (go, go_rx) = sync_channel(1);
    let gate = Arc::new(Gate {
        paused: AtomicBool::new(false),
        reached: Mutex::new(reached_tx),
        go: Mutex::new(go_rx),
    });
    let ours = cache(dir.path(), Some(gate));
    put(&ours, BULK, "first");
    ours.save_now().unwrap(); // the snapshot
    let theirs = cache(dir.path(), None); // another process, as far as the files go
    for key in 0..BULK {
        put(&ours, key, &long("first"));
    }
    // An append far larger than the snapshot: a compaction starts in the background.
    ours.save_now().unwrap();
    assert!(ours.compaction.running(), "no compaction started");
    reached
        .recv_timeout(BOUND)
        .expect("the compaction reaches its snapshot's first write");

    let saving = Arc::clone(&ours);
    returns_during_the_compaction("a save of this process", &go, move || {
        put(&saving, BULK + 1, "ours, older");
        saving.save_now().unwrap();
        put(&saving, BULK + 1, "ours, newer");
        put(&saving, 1, "ours");
        saving.save_now().unwrap();
    });
    let appending = Arc::clone(&theirs);
    returns_during_the_compaction("another process's append", &go, move || {
        put(&appending, BULK + 2, "theirs");
        put(&appending, 2, "theirs");
        appending.save_now().unwrap();
    });
    // Changed here and not saved, some before the copy reaches them: the compaction must
    // not store them.
    for key in 10..BULK {
        put(&ours, key, &long("unsaved"));
    }
    go.send(()).unwrap();
    ours.compaction.wait();

    // The compaction happened: a new snapshot, whose journal carries the frames above.
    let path = cache_path(dir.path(), "c");
    let journal = crate::store::journal::path_beside(&path);
    let checked = crate::store::journal::check(&journal)
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        checked.generation >= 2,
        "no compaction finished: {checked:?}"
    );
    assert!(!crate::store::journal::next_path_beside(&path).exists());
    // Memory took in the other process's append, and kept the unsaved changes pending.
    assert_eq!(value_of(&ours, BULK + 2).as_deref(), Some("theirs"));
    assert_eq!(value_of(&ours, 10), Some(long("unsaved")));
    assert!(ours.pending_changes() > 0);

    let stored = || {
        let mut rows: Vec<(u64, String)> = cache(dir.path(), None)
            .snapshot_rows()
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect();
        rows.sort_unstable();
        rows
    };
    let want = |unsaved: &str| -> Vec<(u64, String)> {
        (0..BULK + 3)
            .map(|key| {
                let value = match key {
                    1 => "ours".into(),
                    2 => "theirs".into(),
                    k if k == BULK + 1 => "ours, newer".into(),
                    k if k == BULK + 2 => "theirs".into(),
                    k if k == BULK => "first".into(),
                    10..BULK => long(unsaved),
                    _ => long("first"),
                };
                (key, value)
            })
            .collect()
    };
    assert!(
        stored() == want("first"),
        "the files differ from what saves stored"
    );
    // The next save stores the pending changes.
    ours.save_now().unwrap();
    assert!(stored() == want("unsaved"), "the files lack the last save");
}
