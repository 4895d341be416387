//! Per-entry dependencies on a real Redis server and Cluster (feature `redis`): what an entry
//! read is recorded on the server, so an invalidation in any process removes the entries that
//! read the invalidated one, whoever computed them. Run with
//! `cargo test -p tests --features redis --test redis_entries`.

use tests::child;
use tests::fleet::{host, unique, worker};
use tests::redis_cluster;
use tests::redis_server::running_or_skip;

const WORKER: &str = env!("CARGO_BIN_EXE_redis_worker");

/// One `redis_worker` command on `url`; what it printed.
fn run(url: &str, manager: &str, marks: &std::path::Path, args: &[&str]) -> String {
    let out = child::output(worker(WORKER, url, manager, marks).args(args));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// How process B invalidates what `derived(5)` read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Invalidation {
    /// `invalidate_key(5)` on `bases`.
    Entry,
    /// `invalidate_cache("bases")`, with no dependency declared between the caches.
    WholeCache,
}

/// A computes `derived(5)` from `bases(5)`; C reads it from the server; B, which never saw
/// either, invalidates `bases(5)` (or `bases` whole) after the source changed; C then
/// recomputes both.
fn an_invalidation_in_one_process_takes_the_readers_off_every_host(
    url: &str,
    invalidation: Invalidation,
) {
    // Each its own manager: the tests may share one server (CACHEMAN_REDIS_URL).
    let manager = unique(&format!("{invalidation:?}_across_hosts"));
    let marks = tempfile::tempdir().unwrap();
    let source = marks.path().join("source");
    std::fs::write(&source, "10").unwrap();
    assert_eq!(run(url, &manager, marks.path(), &["derive", "5"]), "51 1 1");
    assert_eq!(run(url, &manager, marks.path(), &["derive", "5"]), "51 0 0");
    std::fs::write(&source, "20").unwrap();
    let command: &[&str] = match invalidation {
        Invalidation::Entry => &["invalidate-base", "5"],
        Invalidation::WholeCache => &["invalidate-bases"],
    };
    run(url, &manager, marks.path(), command);
    assert_eq!(
        run(url, &manager, marks.path(), &["derive", "5"]),
        "101 1 1",
        "a process served the reader of what another process invalidated ({invalidation:?})"
    );
    if invalidation == Invalidation::WholeCache {
        // The readers set of `bases(5)` outlives the generation bump (it is per key, not per
        // generation): the put of the new `bases(5)`, another value, takes `derived(5)` off
        // once more, so the recomputed `derived(5)` may land only at the next lookup.
        let fourth = run(url, &manager, marks.path(), &["derive", "5"]);
        assert!(fourth == "101 0 0" || fourth == "101 1 0", "{fourth}");
    }
    assert_eq!(
        run(url, &manager, marks.path(), &["derive", "5"]),
        "101 0 0"
    );
}

#[test]
fn a_cache_invalidated_whole_in_one_process_takes_its_reader_caches_off_the_server() {
    let Some(server) = running_or_skip("cache_readers_across_hosts") else {
        return;
    };
    an_invalidation_in_one_process_takes_the_readers_off_every_host(
        &server.url(),
        Invalidation::WholeCache,
    );
}

#[test]
fn a_cache_invalidated_whole_in_one_process_takes_its_reader_caches_off_a_cluster() {
    let Some(cluster) = redis_cluster::running_or_skip("cluster_cache_readers") else {
        return;
    };
    an_invalidation_in_one_process_takes_the_readers_off_every_host(
        &cluster.url(),
        Invalidation::WholeCache,
    );
}

#[test]
fn an_entry_invalidated_in_one_process_takes_its_readers_off_the_server() {
    let Some(server) = running_or_skip("entry_readers_across_hosts") else {
        return;
    };
    an_invalidation_in_one_process_takes_the_readers_off_every_host(
        &server.url(),
        Invalidation::Entry,
    );
}

#[test]
fn an_entry_invalidated_in_one_process_takes_its_readers_off_a_cluster() {
    let Some(cluster) = redis_cluster::running_or_skip("cluster_entry_readers") else {
        return;
    };
    an_invalidation_in_one_process_takes_the_readers_off_every_host(
        &cluster.url(),
        Invalidation::Entry,
    );
}

#[test]
fn a_reader_whose_input_was_invalidated_while_it_computed_does_not_land() {
    let Some(server) = running_or_skip("reader_of_a_changed_input") else {
        return;
    };
    nothing_computed_across_an_invalidation_lands(&server.url());
}

#[test]
fn a_reader_whose_input_was_invalidated_while_it_computed_does_not_land_on_a_cluster() {
    let Some(cluster) = redis_cluster::running_or_skip("cluster_reader_of_a_changed_input") else {
        return;
    };
    nothing_computed_across_an_invalidation_lands(&cluster.url());
}

#[test]
fn a_manager_of_the_same_name_on_another_server_does_not_hide_what_a_reader_read() {
    let Some(server) = running_or_skip("twin_server") else {
        return;
    };
    let Some(cluster) = redis_cluster::running_or_skip("twin_cluster") else {
        return;
    };
    // Registered first, the twin's caches are what a look-up by manager and cache name alone
    // finds: the reader's inputs must be looked up on its own server (this failed when they
    // were not: the input was taken for one on another server, and nothing was checked).
    let name = unique("entries_twin");
    let (_twin_dir, twin) = host(&name, &cluster.url());
    let _twin_caches = (
        twin.register_cache::<u64, u64>("bases").unwrap(),
        twin.register_cache::<u64, u64>("derived").unwrap(),
    );
    nothing_computed_across_an_invalidation_lands_in(&name, &server.url());
}

/// Host A computes while host B invalidates what A read, or what A computes.
fn nothing_computed_across_an_invalidation_lands(url: &str) {
    nothing_computed_across_an_invalidation_lands_in(&unique("entries_race"), url);
}

/// [`nothing_computed_across_an_invalidation_lands`] with the manager `name`.
fn nothing_computed_across_an_invalidation_lands_in(name: &str, url: &str) {
    let (_a_dir, a) = host(name, url);
    let (_b_dir, b) = host(name, url);
    let bases_on_a = a.register_cache::<u64, u64>("bases").unwrap();
    let derived_on_a = a.register_cache::<u64, u64>("derived").unwrap();
    let bases_on_b = b.register_cache::<u64, u64>("bases").unwrap();
    let derived_on_b = b.register_cache::<u64, u64>("derived").unwrap();

    // A reads `bases(1)`, then B invalidates it before A's computation ends: A's caller
    // gets its value, but the server must not keep it.
    let value = derived_on_a.get_or_insert_with(1, || {
        let base = bases_on_a.get_or_insert_with(1, || 10);
        bases_on_b.invalidate_key(&1).unwrap();
        base + 1
    });
    assert_eq!(value, 11);
    assert_eq!(
        derived_on_b.get(&1),
        None,
        "a reader computed from an invalidated input landed on the server"
    );

    // An entry invalidated while it is computed does not land either.
    let value = bases_on_a.get_or_insert_with(2, || {
        bases_on_b.invalidate_key(&2).unwrap();
        20
    });
    assert_eq!(value, 20);
    assert_eq!(
        bases_on_b.get(&2),
        None,
        "an invalidated computation landed"
    );

    // Undisturbed, both land and are read by the other host.
    derived_on_a.get_or_insert_with(3, || bases_on_a.get_or_insert_with(3, || 30) + 1);
    assert_eq!(derived_on_b.get(&3), Some(31));
    assert_eq!(bases_on_b.get(&3), Some(30));

    // B invalidates the input's cache whole while A computes a reader of it: not stored.
    let value = derived_on_a.get_or_insert_with(4, || {
        let base = bases_on_a.get_or_insert_with(4, || 40);
        b.invalidate_cache("bases").unwrap();
        base + 1
    });
    assert_eq!(value, 41);
    assert_eq!(
        derived_on_b.get(&4),
        None,
        "a reader computed across a whole-cache invalidation of its input landed"
    );
    assert_eq!(derived_on_a.stats().store_errors, 0);
}

#[test]
fn an_insert_of_another_value_takes_the_readers_of_the_old_one_off_the_server() {
    let Some(server) = running_or_skip("insert_reaches_readers") else {
        return;
    };
    let name = unique("entries_insert");
    let (_a_dir, a) = host(&name, &server.url());
    let (_b_dir, b) = host(&name, &server.url());
    let bases_on_a = a.register_cache::<u64, u64>("bases").unwrap();
    let derived_on_a = a.register_cache::<u64, u64>("derived").unwrap();
    derived_on_a.get_or_insert_with(1, || bases_on_a.get_or_insert_with(1, || 10) + 1);
    let bases_on_b = b.register_cache::<u64, u64>("bases").unwrap();
    let derived_on_b = b.register_cache::<u64, u64>("derived").unwrap();
    assert_eq!(derived_on_b.get(&1), Some(11));
    // The same value again changes nothing; another one takes the reader off.
    bases_on_b.insert(1, 10);
    assert_eq!(derived_on_b.get(&1), Some(11));
    bases_on_b.insert(1, 50);
    assert_eq!(
        derived_on_b.get(&1),
        None,
        "a reader of the old value was served"
    );
}

#[test]
fn a_reader_of_a_value_another_host_recomputed_lands_for_every_host() {
    let Some(server) = running_or_skip("reader_of_a_recomputed_input") else {
        return;
    };
    let name = unique("entries_recomputed");
    let (_a_dir, a) = host(&name, &server.url());
    let (_b_dir, b) = host(&name, &server.url());
    let bases_on_a = a.register_cache::<u64, u64>("bases").unwrap();
    let derived_on_a = a.register_cache::<u64, u64>("derived").unwrap();
    let bases_on_b = b.register_cache::<u64, u64>("bases").unwrap();
    let derived_on_b = b.register_cache::<u64, u64>("derived").unwrap();
    let derive = |base: u64| {
        derived_on_a.get_or_insert_with(1, || bases_on_a.get_or_insert_with(1, || base) + 1)
    };
    assert_eq!(derive(10), 11);
    // B invalidates and recomputes the input to another value; A, which computed the old one,
    // recomputes its reader from the server's new value, and the reader lands.
    bases_on_b.invalidate_key(&1).unwrap();
    assert_eq!(bases_on_b.get_or_insert_with(1, || 20), 20);
    assert_eq!(derived_on_b.get(&1), None);
    assert_eq!(derive(99), 21);
    assert_eq!(
        derived_on_b.get(&1),
        Some(21),
        "the reader was refused: A recorded the stamp of the value it computed before"
    );
}
