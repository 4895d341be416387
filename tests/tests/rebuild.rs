//! Rebuilds as CacheMan does them: `invalidate_and_rebuild_cache` saves what the builder
//! built, so a reload (in this process or another) finds it; and the post-processor runs after
//! every load or build, the default empty build of a cache without a builder included.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use cacheman::{Cache, CacheManager, Contents};

const READER: &str = env!("CARGO_BIN_EXE_rebuilt_reader");

/// The cache `rebuilt`, whose builder makes `{1: 10 * round, 2: 20 * round}` and counts its
/// rounds.
fn rebuilt(manager: &CacheManager, rounds: &Arc<AtomicUsize>) -> Cache<u32, u32> {
    let rounds = Arc::clone(rounds);
    manager
        .cache_builder::<u32, u32>("rebuilt")
        .builder(move |_| {
            let round = rounds.fetch_add(1, Ordering::SeqCst) as u32 + 1;
            Ok(Contents::from([(1, 10 * round), (2, 20 * round)]))
        })
        .register()
        .unwrap()
}

/// Runs the reader process on `dir` and returns its output line, waiting 60 s at most.
fn read_in_another_process(dir: &std::path::Path) -> String {
    let child = Command::new(READER)
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (done, outcome) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match outcome.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => {
            let output = output.unwrap();
            assert!(output.status.success(), "the reader failed: {output:?}");
            String::from_utf8(output.stdout).unwrap().trim().to_owned()
        }
        Err(_) => {
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("the reader process did not finish within 60 s");
        }
    }
}

#[test]
fn a_rebuild_is_saved_for_a_reload_and_for_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("rebuilds", dir.path());
    let rounds = Arc::new(AtomicUsize::new(0));
    let cache = rebuilt(&manager, &rounds);
    assert_eq!(
        rounds.load(Ordering::SeqCst),
        1,
        "no file yet: built at registration"
    );
    cache.insert(3, 30);
    cache.save().unwrap();

    manager.invalidate_and_rebuild_cache("rebuilt").unwrap();
    assert_eq!(rounds.load(Ordering::SeqCst), 2);
    let rebuilt_contents = Contents::from([(1, 20), (2, 40)]);
    assert_eq!(cache.snapshot(), rebuilt_contents);
    assert_eq!(cache.pending_changes(), 0, "the rebuilt contents are saved");

    manager.reload_cache("rebuilt").unwrap();
    assert_eq!(
        cache.snapshot(),
        rebuilt_contents,
        "a reload finds what was rebuilt"
    );
    assert_eq!(
        rounds.load(Ordering::SeqCst),
        2,
        "without asking the builder again"
    );

    let fresh = CacheManager::new("rebuilds", dir.path());
    let again = rebuilt(&fresh, &rounds);
    assert_eq!(
        again.snapshot(),
        rebuilt_contents,
        "a new manager reads it too"
    );
    assert_eq!(rounds.load(Ordering::SeqCst), 2);

    assert_eq!(
        read_in_another_process(dir.path()),
        "builder_ran=false entries=1:20,2:40"
    );
}

#[test]
fn the_post_processor_runs_after_the_default_empty_build() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("post", dir.path());
    let cache = manager
        .cache_builder::<u32, u32>("seeded")
        .post_processor(|mut contents| {
            contents.entry(0).or_insert(42);
            contents
        })
        .register()
        .unwrap();
    assert_eq!(
        cache.snapshot(),
        Contents::from([(0, 42)]),
        "no builder, no file"
    );

    cache.insert(1, 1);
    cache.save().unwrap();
    manager.invalidate_and_rebuild_cache("seeded").unwrap();
    assert_eq!(
        cache.snapshot(),
        Contents::from([(0, 42)]),
        "after a rebuild"
    );
    manager.reload_cache("seeded").unwrap();
    assert_eq!(
        cache.snapshot(),
        Contents::from([(0, 42)]),
        "after a reload"
    );
}
