//! Caches on a real Redis Cluster (feature `redis`): three masters (`.ci/run` starts them, or
//! each test starts its own), reached through a `redis+cluster://` URL. Run with
//! `cargo test -p tests --features redis --test redis_cluster`.

use cacheman::CacheManager;
use tests::child::{self, Lines};
use tests::fleet::{self, Serving, runs, runs_total, unique, worker};
use tests::redis_cluster::{RedisCluster, running_or_skip};

const WORKER: &str = env!("CARGO_BIN_EXE_redis_worker");

fn host(name: &str, cluster: &RedisCluster) -> (tempfile::TempDir, CacheManager) {
    fleet::host(name, &cluster.url())
}

#[test]
fn caches_in_slots_of_different_nodes_are_shared_by_two_hosts() {
    let Some(cluster) = running_or_skip("caches_across_slots") else {
        return;
    };
    let name = unique("cluster_slots");
    let (_a_dir, a) = host(&name, &cluster);
    let (_b_dir, b) = host(&name, &cluster);
    let names: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    let mut on_a = Vec::new();
    for cache in &names {
        let cache_on_a = a.register_cache::<u32, String>(cache).unwrap();
        for key in 0..10 {
            cache_on_a.get_or_insert_with(key, || format!("{cache}/{key}"));
        }
        on_a.push(cache_on_a);
    }
    let mut on_b = Vec::new();
    for cache in &names {
        let cache_on_b = b.register_cache::<u32, String>(cache).unwrap();
        on_b.push(cache_on_b.clone());
        let on_b = cache_on_b;
        for key in 0..10 {
            let value = on_b.get_or_insert_with(key, || unreachable!("B recomputed {cache}"));
            assert_eq!(value, format!("{cache}/{key}"));
        }
        assert_eq!(on_b.stats().store_errors, 0);
    }
    // The caches' slots are spread over the masters (each cache's keys in one slot).
    let pattern = format!("cacheman:{{{name}:*:e:*");
    let per_node: Vec<usize> = cluster
        .ports()
        .iter()
        .map(|port| cluster.keys_on(*port, &pattern).len())
        .collect();
    assert_eq!(per_node.iter().sum::<usize>(), 80, "{per_node:?}");
    assert!(
        per_node.iter().filter(|n| **n > 0).count() >= 2,
        "every cache on one node: {per_node:?}"
    );
    // Insert, remove and the invalidation of one cache reach the other host.
    let (c0_on_a, c0_on_b) = (&on_a[0], &on_b[0]);
    c0_on_a.insert(100, "inserted".into());
    assert_eq!(c0_on_b.get(&100).as_deref(), Some("inserted"));
    c0_on_b.remove(&100);
    assert_eq!(c0_on_a.get(&100), None);
    a.invalidate_cache("c0").unwrap();
    assert_eq!(c0_on_b.get(&1), None);
    assert_eq!(on_b[1].get(&1).as_deref(), Some("c1/1"));
}

/// A `redis_worker serve` process on the Cluster.
fn serving(cluster: &RedisCluster, manager: &str, marks: &std::path::Path, local: bool) -> Serving {
    let mut command = worker(WORKER, &cluster.url(), manager, marks);
    command
        .arg("serve")
        .env("LOCAL_COPY", if local { "1" } else { "0" });
    Serving::start(command)
}

#[test]
fn an_invalidation_of_a_cache_with_dependents_reaches_other_processes() {
    let Some(cluster) = running_or_skip("cluster_dependents") else {
        return;
    };
    let name = unique("cluster_dependents");
    let marks = tempfile::tempdir().unwrap();
    // This process holds the root cache; the workers hold `squares`, which depends on it.
    let (_dir, here) = host(&name, &cluster);
    here.register_dependent_cache("roots", "squares").unwrap();
    let roots = here.register_cache::<u64, u64>("roots").unwrap();
    roots.get_or_insert_with(1, || 1);
    let mut plain = serving(&cluster, &name, marks.path(), false);
    let mut local = serving(&cluster, &name, marks.path(), true);
    assert_eq!(plain.ask("get 7"), "49 1");
    assert_eq!(plain.ask("get 7"), "49 0");
    assert_eq!(local.ask("get 7"), "49 0");

    // A third process invalidates the root (whose slot is not the dependent's, most likely
    // on another node): the dependent's entries are left behind on every host.
    let out = child::output(
        worker(WORKER, &cluster.url(), &name, marks.path()).args(["invalidate", "roots"]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        plain.ask("get 7"),
        "49 1",
        "the dependent's old entry was served"
    );
    // The local copy hears it through pub/sub on its one node (an event: bounded poll).
    child::poll(|| (local.ask("get 7") == "49 0").then_some(()))
        .expect("the invalidation never reached the local copy");
    assert_eq!(runs(marks.path()).get(&7), Some(&2));
    let mut ran = false;
    roots.get_or_insert_with(1, || {
        ran = true;
        1
    });
    assert!(ran, "the root's old entry was served");
    plain.finish();
    local.finish();
}

#[test]
fn three_processes_run_each_body_once_under_a_herd_on_a_cluster() {
    let Some(cluster) = running_or_skip("cluster_herd") else {
        return;
    };
    let marks = tempfile::tempdir().unwrap();
    let compute = || {
        let mut command = worker(
            WORKER,
            &cluster.url(),
            &unique("cluster_herd"),
            marks.path(),
        );
        command.args(["compute", "0", "100"]);
        command
    };
    let herd = fleet::herd(3, compute, &marks.path().join("go"));
    for mut process in herd {
        let mut lines = Lines::of(&mut process);
        assert_eq!(
            lines.next(&mut process),
            "done 0",
            "store errors on a worker"
        );
        assert!(child::wait(&mut process, "a herd worker").success());
    }
    let runs = runs(marks.path());
    assert_eq!(runs.len(), 100, "every key computed");
    assert_eq!(
        runs_total(marks.path()),
        100,
        "bodies run more than once: {runs:?}"
    );
}
