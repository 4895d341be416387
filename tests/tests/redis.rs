//! Caches on a real Redis server (feature `redis`), in one process: run with
//! `cargo test -p tests --features redis --test redis`. Each test uses a manager name of its
//! own, so that tests sharing the server `.ci/run` started never meet; tests that stop the
//! server start one of their own. Without a `redis-server` binary the tests say so and skip,
//! except under CI, which must have one. The tests with several processes are in
//! `redis_processes.rs`.

use std::time::Duration;

use cacheman::{CacheManager, CacheOptions, Redis};
use tests::child;
use tests::fleet::unique;
use tests::redis_server::{RedisServer, running_or_skip};
use tests::support::{capture_warnings, warnings_containing};

fn redis(server: &RedisServer) -> Redis {
    Redis::new(server.url())
        .retry_after(Duration::from_millis(50))
        .command_timeout(Duration::from_millis(500))
}

/// A manager standing for one host: its own directory, the server's caches.
fn host(name: &str, server: &RedisServer) -> (tempfile::TempDir, CacheManager) {
    tests::fleet::host(name, &server.url())
}

fn entry_keys(server: &RedisServer, manager: &str) -> Vec<String> {
    let pattern = format!("cacheman:{{{manager}:*:e:*");
    server
        .cli(&["--scan", "--pattern", &pattern])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn two_hosts_share_entries_and_see_each_others_invalidation() {
    let Some(server) = running_or_skip("two_hosts_share_entries") else {
        return;
    };
    let (_a_dir, a) = host(&unique("redis_share"), &server);
    let (_b_dir, b) = host(&unique("redis_share"), &server);
    let on_a = a.register_cache::<String, usize>("lengths").unwrap();
    let on_b = b.register_cache::<String, usize>("lengths").unwrap();

    assert_eq!(on_a.get_or_insert_with("hello".into(), || 5), 5);
    // B never computed it: the value comes from the server, and `get` by a borrowed key finds it.
    assert_eq!(
        on_b.get_or_insert_with("hello".into(), || unreachable!()),
        5
    );
    assert_eq!(on_b.get("hello"), Some(5));
    assert_eq!(on_b.stats().hits, 2);

    // An insert on one host is read on the other; a remove too.
    on_b.insert("wide".into(), 4);
    assert_eq!(on_a.get("wide"), Some(4));
    assert_eq!(on_a.remove("wide"), None); // not held locally: no local copy
    assert_eq!(on_b.get("wide"), None);

    // An invalidation on A reaches B at its next lookup.
    a.invalidate_cache("lengths").unwrap();
    let mut ran = false;
    assert_eq!(
        on_b.get_or_insert_with("hello".into(), || {
            ran = true;
            5
        }),
        5
    );
    assert!(
        ran,
        "B served an entry of the generation before A's invalidation"
    );
    assert_eq!(on_a.stats().store_errors + on_b.stats().store_errors, 0);
}

#[test]
fn a_changed_type_or_function_never_reads_old_entries() {
    let Some(server) = running_or_skip("changed_type_or_function") else {
        return;
    };
    let (_dir, manager) = host(&unique("redis_fingerprints"), &server);
    let v1 = manager
        .register_custom_cache::<u32, u32>("f", CacheOptions::new().fn_fingerprint(1))
        .unwrap();
    v1.get_or_insert_with(1, || 10);
    manager.deregister_cache("f").unwrap();
    let v2 = manager
        .register_custom_cache::<u32, u32>("f", CacheOptions::new().fn_fingerprint(2))
        .unwrap();
    assert_eq!(v2.get_or_insert_with(1, || 20), 20);
    manager.deregister_cache("f").unwrap();
    let other_type = manager
        .register_custom_cache::<u32, u64>("f", CacheOptions::new().fn_fingerprint(2))
        .unwrap();
    assert_eq!(other_type.get_or_insert_with(1, || 30), 30);
}

#[test]
fn a_time_to_live_is_the_servers_expiry() {
    let Some(server) = running_or_skip("time_to_live") else {
        return;
    };
    let (_dir, manager) = host(&unique("redis_ttl"), &server);
    let options = CacheOptions::new().ttl(Duration::from_secs(600));
    let cache = manager
        .register_custom_cache::<u32, u32>("expiring", options)
        .unwrap();
    cache.get_or_insert_with(1, || 1);
    let keys = entry_keys(&server, &unique("redis_ttl"));
    assert_eq!(keys.len(), 1, "{keys:?}");
    let ttl: u64 = server.cli(&["PTTL", &keys[0]]).trim().parse().unwrap();
    assert!(ttl > 500_000 && ttl <= 600_000, "PTTL {ttl}");
}

#[test]
fn a_value_that_does_not_decode_is_a_miss_with_a_warning() {
    capture_warnings();
    let Some(server) = running_or_skip("value_that_does_not_decode") else {
        return;
    };
    let (_dir, manager) = host(&unique("redis_bad_data"), &server);
    let cache = manager.register_cache::<u32, Vec<u64>>("lists").unwrap();
    cache.get_or_insert_with(1, || vec![1, 2, 3]);
    let keys = entry_keys(&server, &unique("redis_bad_data"));
    assert_eq!(keys.len(), 1, "{keys:?}");
    // A stamp (8 bytes), key 1, then a vector claiming 2^35 elements in five bytes: nothing
    // may be reserved for it, and nothing panics.
    let hostile = "redis.call('SET', KEYS[1], '\\0\\0\\0\\0\\0\\0\\0\\0\\1\\255\\255\\255\\255\\127') return 1";
    server.cli(&["EVAL", hostile, "1", &keys[0]]);
    let mut ran = false;
    let value = cache.get_or_insert_with(1, || {
        ran = true;
        vec![4]
    });
    assert!(ran && value == vec![4]);
    assert!(
        !warnings_containing("does not decode").is_empty(),
        "no warning for the hostile value"
    );
    // The recomputed value replaced it.
    let (_b_dir, b) = host(&unique("redis_bad_data"), &server);
    let on_b = b.register_cache::<u32, Vec<u64>>("lists").unwrap();
    assert_eq!(on_b.get(&1), Some(vec![4]));
    // Another program's bytes under the key: a miss too, and so are bytes shorter than a
    // stamp.
    server.cli(&["SET", &keys[0], "not postcard at all"]);
    assert_eq!(on_b.get(&1), None);
    server.cli(&["SET", &keys[0], "short"]);
    assert_eq!(on_b.get(&1), None);
}

#[test]
fn a_local_copy_serves_hits_and_drops_what_another_host_invalidates() {
    let Some(server) = running_or_skip("local_copy") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = CacheManager::new(&unique("redis_local"), dir.path())
        .with_redis(redis(&server).local_copy(true));
    let (_other_dir, other) = host(&unique("redis_local"), &server);
    let cache = local.register_cache::<u32, u32>("c").unwrap();
    let on_other = other.register_cache::<u32, u32>("c").unwrap();
    // The subscription is up before the copy is kept: wait for it (an event, bounded).
    child::poll(|| {
        cache.get_or_insert_with(1, || 1);
        cache.contains_key(&1).then_some(())
    })
    .expect("the local copy never kept an entry");
    assert_eq!(cache.get(&1), Some(1));
    // What the host with a copy computed reached the server too, even while its
    // subscription was being set up (which drops the copy).
    assert_eq!(on_other.get(&1), Some(1));
    on_other.get_or_insert_with(2, || 2);
    assert_eq!(cache.get(&2), Some(2)); // fetched, then kept
    assert!(cache.contains_key(&2));

    // Another host's insert and remove reach the copy too (it is dropped, then fetched).
    on_other.insert(2, 20);
    child::poll(|| (cache.get(&2) == Some(20)).then_some(()))
        .expect("another host's insert never reached the local copy");
    assert_eq!(on_other.remove(&2), None); // the other host keeps no copy
    child::poll(|| (cache.get(&2).is_none()).then_some(()))
        .expect("another host's remove never reached the local copy");

    other.invalidate_cache("c").unwrap();
    child::poll(|| (!cache.contains_key(&1) && !cache.contains_key(&2)).then_some(()))
        .expect("the invalidation never reached the local copy");
    let mut ran = false;
    cache.get_or_insert_with(1, || {
        ran = true;
        1
    });
    assert!(ran);
}

#[test]
fn a_down_server_costs_the_sharing_never_the_value() {
    capture_warnings();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::new(format!("redis://127.0.0.1:{port}/"))
        .connect_timeout(Duration::from_millis(200))
        .retry_after(Duration::from_millis(50));
    let manager = CacheManager::new(&unique("redis_down"), dir.path()).with_redis(redis);
    let cache = manager.register_cache::<u32, u32>("c").unwrap();
    for n in 0..5 {
        assert_eq!(cache.get_or_insert_with(n, || n + 1), n + 1);
    }
    assert!(cache.stats().store_errors >= 1);
    let warned = warnings_containing(&format!("127.0.0.1:{port}"));
    assert!(
        warned.iter().any(|w| w.contains("`c`")),
        "no warning naming the cache and server: {warned:?}"
    );
    let err = manager.invalidate_cache("c").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("`c`") && text.contains(&format!("127.0.0.1:{port}")),
        "{text}"
    );
}

#[test]
fn async_callers_share_through_the_server_too() {
    let Some(server) = running_or_skip("async_callers") else {
        return;
    };
    let (_a_dir, a) = host(&unique("redis_async"), &server);
    let (_b_dir, b) = host(&unique("redis_async"), &server);
    let on_a = a.register_cache::<u32, u32>("c").unwrap();
    let on_b = b.register_cache::<u32, u32>("c").unwrap();
    let value = pollster::block_on(on_a.get_or_insert_with_async(6, || async { 36 }));
    assert_eq!(value, 36);
    let value = pollster::block_on(on_b.get_or_insert_with_async(6, || async { unreachable!() }));
    assert_eq!(value, 36);
}

/// Computes key 1 of `cache` (to 11) on a thread whose body waits until the returned sender
/// sends: the thread holds the key's lease meanwhile. Returns once the body has started.
fn hold_key_1(
    cache: cacheman::Cache<u32, u32>,
) -> (std::thread::JoinHandle<u32>, std::sync::mpsc::Sender<()>) {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        cache.get_or_insert_with(1, || {
            started_tx.send(()).unwrap();
            finish_rx.recv().unwrap();
            11
        })
    });
    started_rx.recv().unwrap();
    (holder, finish_tx)
}

#[test]
fn a_caller_waits_for_another_hosts_lease_then_takes_its_value() {
    let Some(server) = running_or_skip("waits_for_lease") else {
        return;
    };
    let (_a_dir, a) = host(&unique("redis_wait"), &server);
    let (_b_dir, b) = host(&unique("redis_wait"), &server);
    let on_a = a.register_cache::<u32, u32>("c").unwrap();
    let on_b = b.register_cache::<u32, u32>("c").unwrap();
    let (holder, finish_tx) = hold_key_1(on_a);
    let waiter = std::thread::spawn(move || {
        let sync = on_b.get_or_insert_with(1, || unreachable!("the lease holder computes"));
        let on_async = pollster::block_on(on_b.get_or_insert_with_async(1, || async { 0 }));
        (sync, on_async)
    });
    finish_tx.send(()).unwrap();
    assert_eq!(holder.join().unwrap(), 11);
    assert_eq!(waiter.join().unwrap(), (11, 11));
}

#[test]
fn invalidating_a_cache_reaches_its_dependents_on_every_host() {
    let Some(server) = running_or_skip("dependents_on_every_host") else {
        return;
    };
    let name = unique("redis_dependents");
    // Host A knows `edge` only as a declared dependent; host B has it registered.
    let (_a_dir, a) = host(&name, &server);
    a.register_dependent_cache("root", "edge").unwrap();
    let root_on_a = a.register_cache::<u32, u32>("root").unwrap();
    let (_b_dir, b) = host(&name, &server);
    b.register_dependent_cache("root", "edge").unwrap();
    let edge_on_b = b.register_cache::<u32, u32>("edge").unwrap();
    root_on_a.get_or_insert_with(1, || 1);
    edge_on_b.get_or_insert_with(1, || 10);

    a.invalidate_cache("root").unwrap();
    let mut ran = false;
    edge_on_b.get_or_insert_with(1, || {
        ran = true;
        10
    });
    assert!(
        ran,
        "B served its dependent's entry after A invalidated the root"
    );
}

#[test]
fn invalidating_an_entry_removes_what_read_it_from_the_server() {
    let Some(server) = running_or_skip("entry_invalidation") else {
        return;
    };
    let name = unique("redis_entries");
    let (_a_dir, a) = host(&name, &server);
    let docs = a.register_cache::<String, String>("docs").unwrap();
    let counts = a.register_cache::<String, usize>("counts").unwrap();
    let count = |path: &str| {
        counts.get_or_insert_with(path.to_owned(), || {
            let text = docs.get_or_insert_with(path.to_owned(), || format!("text of {path}"));
            text.split_whitespace().count()
        })
    };
    assert_eq!(count("a.txt"), 3);
    docs.invalidate_key("a.txt").unwrap();
    // Another host (which never recorded that `counts` read `docs`) finds neither entry.
    let (_b_dir, b) = host(&name, &server);
    let counts_on_b = b.register_cache::<String, usize>("counts").unwrap();
    let docs_on_b = b.register_cache::<String, String>("docs").unwrap();
    assert_eq!(docs_on_b.get("a.txt"), None);
    assert_eq!(counts_on_b.get("a.txt"), None);
}

#[test]
fn an_async_caller_waits_out_its_bound_on_a_held_lease_then_computes() {
    let Some(server) = running_or_skip("async_wait_bound") else {
        return;
    };
    let name = unique("redis_async_wait");
    let (_a_dir, a) = host(&name, &server);
    let on_a = a.register_cache::<u32, u32>("c").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let b = CacheManager::new(&name, dir.path())
        .with_redis(redis(&server).wait(Duration::from_millis(50)));
    let on_b = b.register_cache::<u32, u32>("c").unwrap();
    let (holder, finish_tx) = hold_key_1(on_a);
    // A holds the lease and never finishes while B asks: B waits (on its async pauses) for
    // its 50 ms bound, then computes itself.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let value = pollster::block_on(on_b.get_or_insert_with_async(1, || async { 12 }));
        done_tx.send(value).unwrap();
    });
    let value = done_rx
        .recv_timeout(child::BOUND)
        .expect("the async waiter never woke");
    assert_eq!(value, 12);
    finish_tx.send(()).unwrap();
    assert_eq!(holder.join().unwrap(), 11);
}

#[test]
fn an_unusable_url_is_refused_at_registration_naming_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new(&unique("redis_bad_url"), dir.path());
    let options = CacheOptions::new().redis("http://not-redis/");
    let err = manager
        .register_custom_cache::<u32, u32>("c", options)
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("`c`") && text.contains("http://not-redis/"),
        "{text}"
    );
}

#[test]
fn a_save_of_a_cache_on_redis_writes_no_file_and_leaves_nothing_pending() {
    let Some(server) = running_or_skip("save_writes_no_file") else {
        return;
    };
    let (dir, manager) = host(&unique("redis_save"), &server);
    let cache = manager.register_cache::<u32, u32>("c").unwrap();
    cache.get_or_insert_with(1, || 1);
    cache.insert(2, 2);
    assert_eq!(
        cache.pending_changes(),
        0,
        "changes pending on a store that took each at once"
    );
    cache.save().unwrap();
    manager.save_all_cache_contents().unwrap();
    let files: Vec<_> = walk(dir.path());
    assert!(
        files.is_empty(),
        "files written for a cache on Redis: {files:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
