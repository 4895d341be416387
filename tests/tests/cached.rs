//! `#[cached]` functions: hits and misses, keys, result/option, methods, dependencies.
//! Each test installs its own manager (a temporary directory) under a name no other test uses.

use std::sync::atomic::{AtomicUsize, Ordering};

use cacheman::{CacheManager, cached};
use tests::support::install;

static SQUARE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = "hits")]
fn square(n: u64) -> u64 {
    SQUARE_RUNS.fetch_add(1, Ordering::SeqCst);
    n * n
}

#[test]
fn the_body_runs_once_per_key_and_hits_are_counted() {
    let (_dir, _manager) = install("hits");
    assert_eq!(square(3), 9);
    assert_eq!(square(3), 9);
    assert_eq!(square(4), 16);
    assert_eq!(SQUARE_RUNS.load(Ordering::SeqCst), 2);
    let stats = square_cache().stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 2, 2));
    assert_eq!(square_cache().get(&3), Some(9));
    assert_eq!(square_uncached(5), 25);
    assert_eq!(SQUARE_RUNS.load(Ordering::SeqCst), 3);
    assert!(
        square_cache().get(&5).is_none(),
        "the uncached body stored nothing"
    );
}

static CONCAT_RUNS: AtomicUsize = AtomicUsize::new(0);

// Arguments named like the generated code's own variables still work.
#[cached(manager = "references")]
fn concat(key: &str, cache: &[u32], result: &Vec<u8>) -> String {
    CONCAT_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("{key}:{cache:?}:{result:?}")
}

#[test]
fn reference_arguments_form_an_owned_key() {
    let (_dir, _manager) = install("references");
    assert_eq!(concat("a", &[1, 2], &vec![3]), "a:[1, 2]:[3]");
    assert_eq!(concat("a", &[1, 2], &vec![3]), "a:[1, 2]:[3]");
    assert_eq!(CONCAT_RUNS.load(Ordering::SeqCst), 1);
    let key = ("a".to_owned(), vec![1, 2], vec![3u8]);
    assert_eq!(concat_cache().get(&key).as_deref(), Some("a:[1, 2]:[3]"));
}

static PARSE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = "results", result)]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    PARSE_RUNS.fetch_add(1, Ordering::SeqCst);
    let n: u32 = text.trim().parse()?;
    Ok(n * 2)
}

#[cached(manager = "results", option)]
fn first_even(values: &[u32]) -> Option<u32> {
    values.iter().copied().find(|v| v % 2 == 0)
}

#[test]
fn result_and_option_cache_only_ok_and_some() {
    let (_dir, _manager) = install("results");
    assert_eq!(parse("21"), Ok(42));
    assert!(parse("x").is_err());
    assert!(parse("x").is_err());
    assert_eq!(parse("21"), Ok(42));
    assert_eq!(
        PARSE_RUNS.load(Ordering::SeqCst),
        3,
        "errors are not cached"
    );
    assert_eq!(parse_cache().len(), 1);

    assert_eq!(first_even(&[1, 3]), None);
    assert_eq!(first_even(&[1, 4]), Some(4));
    assert_eq!(first_even_cache().keys(), vec![vec![1, 4]]);
}

struct Scaler {
    factor: u64,
}

static SCALE_RUNS: AtomicUsize = AtomicUsize::new(0);

impl Scaler {
    /// `self` is not part of the key: every `Scaler` shares this cache.
    #[cached(manager = "methods")]
    fn scale(&self, n: u64) -> u64 {
        SCALE_RUNS.fetch_add(1, Ordering::SeqCst);
        n * self.factor
    }

    /// With `key`, the receiver's state can be part of the key.
    #[cached(manager = "methods", key = (self.factor, n), key_type = (u64, u64))]
    fn scale_by_instance(&self, n: u64) -> u64 {
        n * self.factor
    }

    #[cached(manager = "methods", key = label)]
    fn shout(label: &str, times: usize) -> String {
        label.to_uppercase().repeat(times)
    }
}

#[test]
fn methods_share_one_cache_unless_the_key_names_self() {
    let (_dir, _manager) = install("methods");
    let (two, three) = (Scaler { factor: 2 }, Scaler { factor: 3 });
    assert_eq!(two.scale(5), 10);
    assert_eq!(three.scale(5), 10, "the receiver is not in the key");
    assert_eq!(SCALE_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(Scaler::scale_cache().len(), 1);

    assert_eq!(two.scale_by_instance(5), 10);
    assert_eq!(three.scale_by_instance(5), 15);
    assert_eq!(Scaler::scale_by_instance_cache().len(), 2);

    assert_eq!(Scaler::shout("hi", 2), "HIHI");
    assert_eq!(Scaler::shout("hi", 3), "HIHI", "the key is the label alone");
    assert_eq!(Scaler::shout_cache().keys(), vec!["hi".to_owned()]);
}

static EDGE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = "graph", name = "root")]
fn raw(id: u32) -> u64 {
    u64::from(id)
}

#[cached(manager = "graph", name = "edge", depends_on = "root")]
fn processed(id: u32) -> u64 {
    EDGE_RUNS.fetch_add(1, Ordering::SeqCst);
    raw(id) * 5
}

#[cached(manager = "graph", depends_on = [raw, processed])]
fn report(id: u32, label: &str) -> String {
    format!("{label}: {}", processed(id))
}

#[cached(manager = "graph", depends_on = raw, persistent = false)]
fn scratch(id: u32) -> u64 {
    raw(id) + 1
}

#[test]
fn declared_dependencies_are_known_before_any_call() {
    let (dir, manager) = install("graph");
    assert_eq!(
        manager.declared_cache_names(),
        vec!["edge", "report", "root", "scratch"]
    );
    assert_eq!(
        manager.dependents_of("root"),
        vec!["edge", "report", "scratch"]
    );
    manager.check_declarations().unwrap();

    // A previous run left entries for `edge` on disk; this run never calls `processed`.
    let earlier = CacheManager::new("graph", dir.path());
    let stale = earlier.register_cache::<u32, u64>("edge").unwrap();
    stale.insert(7, 35);
    stale.save().unwrap();

    manager.invalidate_cache("root").unwrap();
    let reread = CacheManager::new("graph", dir.path());
    let edge = reread.register_cache::<u32, u64>("edge").unwrap();
    assert!(
        edge.is_empty(),
        "invalidating root cleared the declared dependent's file"
    );

    assert_eq!(report(1, "one"), "one: 5");
    assert_eq!(EDGE_RUNS.load(Ordering::SeqCst), 1);
    manager.invalidate_cache("root").unwrap();
    assert!(processed_cache().is_empty() && report_cache().is_empty());
    assert_eq!(report(1, "one"), "one: 5");
    assert_eq!(EDGE_RUNS.load(Ordering::SeqCst), 2);
}

static FETCH_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = "asyncs")]
async fn fetch(id: u32, host: &str) -> String {
    FETCH_RUNS.fetch_add(1, Ordering::SeqCst);
    std::future::ready(()).await;
    format!("{host}/{id}")
}

#[cached(manager = "asyncs", result)]
async fn fetch_checked(id: u32) -> Result<u32, String> {
    let doubled = std::future::ready(id.checked_mul(2).ok_or("overflow")).await?;
    Ok(doubled)
}

#[cached(manager = "asyncs", option)]
async fn fetch_some(id: u32) -> Option<u32> {
    (id > 0).then_some(id)
}

#[test]
fn async_functions_are_cached_without_a_runtime() {
    let (_dir, _manager) = install("asyncs");
    assert_eq!(pollster::block_on(fetch(1, "h")), "h/1");
    assert_eq!(pollster::block_on(fetch(1, "h")), "h/1");
    assert_eq!(FETCH_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(pollster::block_on(fetch_checked(2)), Ok(4));
    assert!(pollster::block_on(fetch_checked(u32::MAX)).is_err());
    assert_eq!(fetch_checked_cache().len(), 1);
    assert_eq!(pollster::block_on(fetch_some(0)), None);
    assert_eq!(pollster::block_on(fetch_some(3)), Some(3));
    assert_eq!(fetch_some_cache().len(), 1);
}
