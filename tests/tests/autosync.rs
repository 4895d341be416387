//! Autosync: Redis-style save points, driven by a manual clock so that the whole rule runs in
//! milliseconds.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use cacheman::{AutoSync, CacheManager, CacheOptions, Contents, ManualClock};

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn manager_on_manual_clock(dir: &tempfile::TempDir) -> (CacheManager, ManualClock) {
    let manager = CacheManager::new("app", dir.path());
    let clock = ManualClock::new();
    manager.set_clock(clock.clone());
    (manager, clock)
}

#[test]
fn each_default_save_point_fires_and_the_ones_below_it_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, clock) = manager_on_manual_clock(&dir);
    let one = manager.register_cache::<u64, u64>("one").unwrap();
    let ten = manager.register_cache::<u64, u64>("ten").unwrap();
    let many = manager.register_cache::<u64, u64>("many").unwrap();

    // 60 s / 10,000: 9,999 changes are not enough, 10,000 are.
    many.extend((0..9_999).map(|i| (i, i)));
    clock.advance(secs(60));
    assert!(manager.run_due_saves().saved.is_empty());
    many.insert(9_999, 9_999);
    assert_eq!(manager.run_due_saves().saved, vec!["many"]);

    // 300 s / 10: 9 changes at 300 s are not enough, the 10th is.
    ten.extend((0..9).map(|i| (i, i)));
    clock.advance(secs(240)); // 300 s since registration
    assert!(manager.run_due_saves().saved.is_empty());
    ten.insert(9, 9);
    assert_eq!(manager.run_due_saves().saved, vec!["ten"]);

    // 900 s / 1: one change waits the full 900 s.
    one.insert(1, 1);
    clock.advance(secs(599)); // 899 s since registration
    assert!(manager.run_due_saves().saved.is_empty());
    clock.advance(secs(1));
    assert_eq!(manager.run_due_saves().saved, vec!["one"]);

    let reopened = CacheManager::new("app", dir.path());
    for (name, len) in [("one", 1), ("ten", 10), ("many", 10_000)] {
        let cache = reopened.register_cache::<u64, u64>(name).unwrap();
        assert_eq!(cache.len(), len, "{name} was not saved whole");
    }
}

#[test]
fn counts_and_the_timer_reset_after_a_save() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, clock) = manager_on_manual_clock(&dir);
    let cache = manager.register_cache::<u64, u64>("c").unwrap();
    cache.extend((0..10).map(|i| (i, i)));
    clock.advance(secs(300));
    assert_eq!(manager.run_due_saves().saved, vec!["c"]);
    assert_eq!(cache.pending_changes(), 0);
    assert!(manager.run_due_saves().saved.is_empty(), "saved twice");

    // A new change counts from the save, not from registration.
    cache.insert(100, 100);
    clock.advance(secs(899));
    assert!(manager.run_due_saves().saved.is_empty());
    clock.advance(secs(1));
    assert_eq!(manager.run_due_saves().saved, vec!["c"]);
}

#[test]
fn an_explicit_save_restarts_the_timer_too() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, clock) = manager_on_manual_clock(&dir);
    let cache = manager.register_cache::<u64, u64>("c").unwrap();
    clock.advance(secs(800));
    cache.insert(1, 1);
    cache.save().unwrap();
    cache.insert(2, 2);
    clock.advance(secs(100)); // 900 s since registration, 100 s since the save
    assert!(manager.run_due_saves().saved.is_empty());
}

#[test]
fn per_cache_and_per_manager_policies() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, clock) = manager_on_manual_clock(&dir);
    manager.set_autosync(AutoSync::disabled());
    let manual = manager.register_cache::<u64, u64>("manual").unwrap();
    let eager = AutoSync::disabled().save_point(secs(1), 1);
    let quick = manager
        .register_custom_cache::<u64, u64>("quick", CacheOptions::new().autosync(eager))
        .unwrap();
    manual.insert(1, 1);
    quick.insert(1, 1);
    clock.advance(secs(86_400));
    assert_eq!(manager.run_due_saves().saved, vec!["quick"]);
    assert_eq!(manual.pending_changes(), 1, "a disabled cache was saved");
    assert!(!manager.cache_file_path("manual").unwrap().exists());
}

#[test]
fn a_memory_cache_is_never_written_by_autosync() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, clock) = manager_on_manual_clock(&dir);
    let scratch = manager
        .register_custom_cache::<u64, u64>("scratch", CacheOptions::new().persistent(false))
        .unwrap();
    scratch.insert(1, 1);
    clock.advance(secs(900));
    assert!(manager.run_due_saves().saved.is_empty());
    assert!(!dir.path().join("app").exists());
}

#[test]
fn changes_made_during_a_save_are_kept_for_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, clock) = manager_on_manual_clock(&dir);
    let cache = manager.register_cache::<u64, u64>("c").unwrap();
    let (started_tx, started) = mpsc::channel::<()>();
    let (go, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    let saved_len = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&saved_len);
    manager
        .register_saver("c", move |_: &str, contents: &Contents<u64, u64>| {
            seen.store(contents.len(), Ordering::SeqCst);
            started_tx.send(()).unwrap();
            go_rx.lock().unwrap().recv().unwrap();
            Ok(())
        })
        .unwrap();
    cache.extend((0..10).map(|i| (i, i)));
    clock.advance(secs(300));

    let saver = {
        let manager = manager.clone();
        std::thread::spawn(move || manager.run_due_saves())
    };
    started.recv().unwrap();
    // The save is under way, past its snapshot: these three are not in it.
    cache.extend((10..13).map(|i| (i, i)));
    go.send(()).unwrap();
    assert_eq!(saver.join().unwrap().saved, vec!["c"]);

    assert_eq!(saved_len.load(Ordering::SeqCst), 10);
    assert_eq!(
        cache.pending_changes(),
        3,
        "changes made during the save were lost"
    );
    // They count toward the next save point, from the time of this save.
    clock.advance(secs(899));
    assert!(manager.run_due_saves().saved.is_empty());
    clock.advance(secs(1));
    go.send(()).unwrap();
    assert_eq!(manager.run_due_saves().saved, vec!["c"]);
    assert_eq!(saved_len.load(Ordering::SeqCst), 13);
    assert_eq!(cache.pending_changes(), 0);
}

#[test]
fn a_failing_saver_keeps_the_changes_and_retries_after_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, clock) = manager_on_manual_clock(&dir);
    let cache = manager.register_cache::<u64, u64>("c").unwrap();
    let failing = Arc::new(AtomicBool::new(true));
    let attempts = Arc::new(AtomicUsize::new(0));
    {
        let (failing, attempts) = (Arc::clone(&failing), Arc::clone(&attempts));
        manager
            .register_saver("c", move |_: &str, _: &Contents<u64, u64>| {
                attempts.fetch_add(1, Ordering::SeqCst);
                if failing.load(Ordering::SeqCst) {
                    Err("disk full".into())
                } else {
                    Ok(())
                }
            })
            .unwrap();
    }
    cache.insert(1, 1);
    clock.advance(secs(900));
    let run = manager.run_due_saves();
    assert_eq!((run.saved.len(), run.failed), (0, vec!["c".to_owned()]));
    assert_eq!(
        cache.pending_changes(),
        1,
        "a failed save forgot the change"
    );

    // Not retried on every tick: after the 5 s delay.
    clock.advance(secs(4));
    assert_eq!(manager.run_due_saves(), Default::default());
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    clock.advance(secs(1));
    assert_eq!(manager.run_due_saves().failed, vec!["c"]);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);

    failing.store(false, Ordering::SeqCst);
    clock.advance(secs(5));
    assert_eq!(manager.run_due_saves().saved, vec!["c"]);
    assert_eq!(cache.pending_changes(), 0);
}

/// Real processes: what is saved at exit, and that the background thread never holds a
/// program open.
mod processes {
    use std::process::{Command, Output};

    const CHILD: &str = env!("CARGO_BIN_EXE_autosync_child");

    fn run(dir: &tempfile::TempDir, mode: &str, arg: &str) -> Output {
        tests::child::output(
            Command::new(CHILD)
                .args([mode, arg])
                .env("CACHEMAN_DIR", dir.path())
                .env_remove("RUST_BACKTRACE"),
        )
    }

    fn saved_count(dir: &tempfile::TempDir, cache: &str) -> u64 {
        let out = run(dir, "count", cache);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    #[test]
    fn returning_from_main_without_save_is_seen_complete_by_the_next_process() {
        let dir = tempfile::tempdir().unwrap();
        let out = run(&dir, "insert", "1000");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(saved_count(&dir, "numbers"), 1000);
    }

    #[test]
    fn process_exit_saves_too() {
        let dir = tempfile::tempdir().unwrap();
        assert!(run(&dir, "exit", "500").status.success());
        assert_eq!(saved_count(&dir, "numbers"), 500);
    }

    #[test]
    fn a_panic_out_of_main_saves_too() {
        let dir = tempfile::tempdir().unwrap();
        let out = run(&dir, "panic", "300");
        assert_eq!(out.status.code(), Some(101), "the child did not panic");
        assert_eq!(saved_count(&dir, "numbers"), 300);
    }

    #[test]
    fn the_guard_saves_a_cache_that_exit_handlers_would_not_see() {
        let dir = tempfile::tempdir().unwrap();
        let out = run(&dir, "guard", "200");
        assert_eq!(out.status.code(), Some(101), "the child did not panic");
        assert_eq!(saved_count(&dir, "numbers"), 200);
    }

    #[test]
    fn the_background_thread_saves_without_being_asked() {
        let dir = tempfile::tempdir().unwrap();
        let out = run(&dir, "ticker", "100");
        // The child aborts once saved: no exit handler ran, so the thread did it.
        assert!(
            !out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(saved_count(&dir, "numbers"), 100);
    }

    #[test]
    fn the_background_thread_does_not_keep_a_program_from_exiting() {
        let dir = tempfile::tempdir().unwrap();
        let out = run(&dir, "linger", "10");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(saved_count(&dir, "numbers"), 10);
    }

    /// Ctrl-C and SIGTERM flush with the `signal-flush` feature
    /// (`cargo test -p tests --features signal-flush --test autosync`).
    #[cfg(all(unix, feature = "signal-flush"))]
    #[test]
    fn sigint_and_sigterm_flush_then_end_the_process_as_the_signal_would() {
        use std::os::unix::process::ExitStatusExt;
        use std::process::Stdio;
        use tests::child::{self, Lines};

        for (name, number) in [("INT", 2), ("TERM", 15)] {
            let dir = tempfile::tempdir().unwrap();
            let mut child = Command::new(CHILD)
                .args(["wait", "700"])
                .env("CACHEMAN_DIR", dir.path())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            assert_eq!(Lines::of(&mut child).next(&mut child), "ready");
            let killed = child::output(
                Command::new("kill").args([format!("-{name}"), child.id().to_string()]),
            );
            assert!(killed.status.success());
            let status = child::wait(&mut child, "the signalled child");
            assert_eq!(status.signal(), Some(number), "SIG{name}: {status:?}");
            assert_eq!(saved_count(&dir, "numbers"), 700, "SIG{name} lost changes");
        }
    }
}
