//! Leases on a real Redis server and Cluster (feature `redis`): a computation longer than its
//! lease runs once across processes, because its holder renews the lease while it computes. Run with
//! `cargo test -p tests --features redis --test redis_leases`.

use std::process::Stdio;

use tests::child::{self, Lines};
use tests::fleet::{runs_total, unique, worker};
use tests::redis_cluster;
use tests::redis_server::{self, running_or_skip};

const WORKER: &str = env!("CARGO_BIN_EXE_redis_worker");

/// Short, so that the test outlives several of them; long enough that a renewal every third
/// of it is not missed twice in a row on a loaded machine.
const LEASE_MS: u64 = 600;

#[test]
fn a_computation_longer_than_its_lease_runs_once_across_processes() {
    let Some(server) = running_or_skip("computation_longer_than_its_lease") else {
        return;
    };
    runs_once_though_longer_than_its_lease(&server.url(), || server.time_ms());
}

#[test]
fn a_computation_longer_than_its_lease_runs_once_on_a_cluster() {
    let Some(cluster) = redis_cluster::running_or_skip("cluster_computation_longer_than_its_lease")
    else {
        return;
    };
    let port = cluster.ports()[0];
    runs_once_though_longer_than_its_lease(&cluster.url(), || {
        redis_server::time_ms(&cluster.cli(port, &["TIME"]))
    });
}

/// A worker computes a key for three leases (by `time_ms`, the server's clock) while another
/// waits for it: the key is computed once.
fn runs_once_though_longer_than_its_lease(url: &str, time_ms: impl Fn() -> u64) {
    let manager = unique("redis_renewal");
    let marks = tempfile::tempdir().unwrap();
    let finish = marks.path().join("finish");
    let lease = LEASE_MS.to_string();
    let mut holder = worker(WORKER, url, &manager, marks.path())
        .arg("slow")
        .arg("5")
        .arg(&finish)
        .env("LEASE_MS", &lease)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child::poll(|| marks.path().join("started").exists().then_some(()))
        .expect("the holder never started computing");
    let started_ms = time_ms();
    // Another host asks for the key meanwhile, with no bound on its wait: it waits as long as
    // the lease is held.
    let mut waiter = worker(WORKER, url, &manager, marks.path())
        .args(["compute", "5", "6"])
        .env("LEASE_MS", &lease)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The event waited for is the server's clock passing three leases since the holder
    // started (expiry is the server's real time): an unrenewed lease has run out by then,
    // and the waiter would have taken it and computed.
    child::poll(|| (time_ms() >= started_ms + 3 * LEASE_MS).then_some(()))
        .expect("the server's clock never moved");
    assert!(
        waiter.try_wait().unwrap().is_none(),
        "the waiter ended while the holder still computed"
    );
    std::fs::write(&finish, b"").unwrap();
    let mut lines = Lines::of(&mut holder);
    assert_eq!(lines.next(&mut holder), "done");
    assert!(child::wait(&mut holder, "the slow holder").success());
    let mut lines = Lines::of(&mut waiter);
    assert_eq!(lines.next(&mut waiter), "done 0");
    assert!(child::wait(&mut waiter, "the waiter").success());
    assert_eq!(
        runs_total(marks.path()),
        1,
        "the key was computed twice: the holder's lease ran out while it computed"
    );
}
