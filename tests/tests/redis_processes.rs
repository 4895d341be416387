//! Caches on a real Redis server shared by real processes standing for hosts (feature
//! `redis`): run with `cargo test -p tests --features redis --test redis_processes`. The
//! processes are `redis_worker`s; each test uses manager names of its own, so that tests
//! sharing the server `.ci/run` started never meet, and the test that stops the server starts
//! one of its own. Without a `redis-server` binary the tests say so and skip, except under
//! CI, which must have one.

use std::process::Command;
use std::time::Duration;

use cacheman::CacheOptions;
use tests::child;
use tests::fleet::{self, Serving, runs, runs_total, unique};
use tests::redis_server::{RedisServer, running_or_skip, start_or_skip};
use tests::support::capture_warnings;

const WORKER: &str = env!("CARGO_BIN_EXE_redis_worker");

fn worker(server: &RedisServer, manager: &str, marks: &std::path::Path) -> Command {
    fleet::worker(WORKER, &server.url(), manager, marks)
}

#[test]
fn three_processes_run_each_body_once_under_a_herd_and_share_the_union() {
    let Some(server) = running_or_skip("three_processes_herd") else {
        return;
    };
    let marks = tempfile::tempdir().unwrap();
    let compute = || {
        let mut command = worker(&server, &unique("redis_herd"), marks.path());
        command.args(["compute", "0", "200"]);
        command
    };
    for mut process in fleet::herd(3, compute, &marks.path().join("go")) {
        let status = child::wait(&mut process, "a herd worker");
        assert!(status.success());
    }
    let runs = runs(marks.path());
    assert_eq!(runs.len(), 200, "every key computed");
    let repeated: Vec<_> = runs.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        repeated.is_empty(),
        "bodies run more than once: {repeated:?}"
    );

    // The union: each process computes a part, then every one reads all without running a body.
    let union_marks = tempfile::tempdir().unwrap();
    for part in 0..3 {
        let (from, to) = ((part * 10).to_string(), (part * 10 + 10).to_string());
        let out = child::output(
            worker(&server, &unique("redis_union"), union_marks.path())
                .args(["compute", &from, &to]),
        );
        assert!(out.status.success());
    }
    assert_eq!(runs_total(union_marks.path()), 30);
    for _ in 0..3 {
        let out = child::output(
            worker(&server, &unique("redis_union"), union_marks.path())
                .args(["compute", "0", "30"]),
        );
        assert!(out.status.success());
    }
    assert_eq!(
        runs_total(union_marks.path()),
        30,
        "a process recomputed what another stored"
    );
}

#[test]
fn an_invalidation_in_one_process_is_seen_by_the_others() {
    let Some(server) = running_or_skip("invalidation_across_processes") else {
        return;
    };
    let marks = tempfile::tempdir().unwrap();
    let mut serving: Vec<_> = [false, true]
        .into_iter()
        .map(|local_copy| {
            let mut command = worker(&server, &unique("redis_invalidation"), marks.path());
            command
                .arg("serve")
                .env("LOCAL_COPY", if local_copy { "1" } else { "0" });
            Serving::start(command)
        })
        .collect();
    let mut ask = |i: usize, line: &str| serving[i].ask(line);
    assert_eq!(ask(0, "get 7"), "49 1");
    assert_eq!(ask(1, "get 7"), "49 0");
    let out = child::output(
        worker(&server, &unique("redis_invalidation"), marks.path()).arg("invalidate"),
    );
    assert!(out.status.success());
    // The process without a local copy sees it at its next lookup.
    assert_eq!(ask(0, "get 7"), "49 1");
    // The one with a local copy hears it through pub/sub (an event: bounded poll); once
    // heard, it fetches what process 0 recomputed, never the old generation.
    let heard = child::poll(|| (ask(1, "get 7") == "49 0").then_some(()));
    assert!(heard.is_some());
    for process in serving {
        process.finish();
    }
}

#[test]
fn a_killed_lease_holder_is_taken_over_after_its_lease() {
    let Some(server) = running_or_skip("killed_lease_holder") else {
        return;
    };
    let marks = tempfile::tempdir().unwrap();
    let mut holder = worker(&server, &unique("redis_lease"), marks.path())
        .args(["hold", "9"])
        .env("LEASE_MS", "300")
        .spawn()
        .unwrap();
    child::poll(|| marks.path().join("started").exists().then_some(()))
        .expect("the holder never started computing");
    holder.kill().unwrap();
    child::wait(&mut holder, "the killed holder");
    // The taker would wait a minute for a lease that never expires; the dead holder's
    // expires after 300 ms and the taker takes it over, well within the bound here.
    let started = std::time::Instant::now();
    let out = child::output(
        worker(&server, &unique("redis_lease"), marks.path())
            .args(["compute", "9", "10"])
            .env("LEASE_MS", "300"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the taker waited out its whole bound: the dead holder's lease never expired"
    );
    // The taker computed it once (the dead holder left no mark), and stored it.
    assert_eq!(runs_total(marks.path()), 1);
    let again = child::output(
        worker(&server, &unique("redis_lease"), marks.path()).args(["compute", "9", "10"]),
    );
    assert!(again.status.success());
    assert_eq!(runs_total(marks.path()), 1);
}

#[test]
fn a_server_stopped_mid_run_and_restarted_is_recovered_without_restarting() {
    capture_warnings();
    let Some(mut server) = start_or_skip("server_stopped_mid_run") else {
        return;
    };
    let marks = tempfile::tempdir().unwrap();
    let mut command = worker(&server, &unique("redis_restart"), marks.path());
    command.arg("serve");
    let mut process = Serving::start(command);
    assert_eq!(process.ask("get 3"), "9 1");
    assert_eq!(process.ask("get 3"), "9 0");
    server.stop();
    // Down: computed values, counted errors, no panic.
    assert_eq!(process.ask("get 3"), "9 1");
    assert_eq!(process.ask("get 4"), "16 1");
    let errors: u64 = process.ask("errors").parse().unwrap();
    assert!(errors >= 1);
    server.restart();
    // Back (empty: no persistence): the process reconnects by itself and shares again.
    let recovered = child::poll(|| {
        process.ask("get 5");
        (process.ask("get 5") == "25 0").then_some(())
    });
    assert!(
        recovered.is_some(),
        "the process never used the restarted server"
    );
    let (_dir, other) = fleet::host(&unique("redis_restart"), &server.url());
    let on_other = other
        .register_custom_cache::<u64, u64>("squares", CacheOptions::new())
        .unwrap();
    assert_eq!(on_other.get(&5), Some(25));
    process.finish();
}

#[test]
fn a_cached_function_with_store_redis_shares_across_processes() {
    let Some(server) = running_or_skip("cached_store_redis") else {
        return;
    };
    let marks = tempfile::tempdir().unwrap();
    // The function's manager is fixed by its attribute: a key of this run's own.
    let n = u64::from(std::process::id());
    let call = || {
        let out = child::output(
            worker(&server, "unused", marks.path())
                .args(["macro", &n.to_string()])
                .env("CACHEMAN_REDIS_URL", server.url())
                .env("CACHEMAN_DIR", marks.path()),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let cube = n * n * n;
    assert_eq!(call(), format!("{cube} 1"));
    assert_eq!(
        call(),
        format!("{cube} 0"),
        "the second process ran the body again"
    );
    // Without a URL, the first call says what to set.
    let out = child::output(
        worker(&server, "unused", marks.path())
            .args(["macro", &(n + 1).to_string()])
            .env_remove("CACHEMAN_REDIS_URL")
            .env("CACHEMAN_DIR", marks.path()),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CACHEMAN_REDIS_URL") && stderr.contains("`cube`"),
        "{stderr}"
    );
}
