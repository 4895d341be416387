//! What a `#[cached]` function offers beside the call: lookups that build no owned key on a
//! hit, one-argument keys, `<fn>_refresh`, `<fn>_peek`, `with_cached_flag`, and the statistics.
//! Each test installs its own manager under a name no other test uses.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use cacheman::{Error, Return, cached};
use tests::support::install;

/// A key part whose clones are counted: building an owned key clones it.
#[derive(Debug, PartialEq, Eq)]
struct Counted(u32);

static CLONES: AtomicUsize = AtomicUsize::new(0);

impl Clone for Counted {
    fn clone(&self) -> Self {
        CLONES.fetch_add(1, Ordering::SeqCst);
        Counted(self.0)
    }
}

impl Hash for Counted {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

#[cached(manager = "borrowed_hits", persistent = false)]
fn label(item: &Counted, name: &str, owned: Counted) -> String {
    format!("{}-{name}-{}", item.0, owned.0)
}

#[cached(manager = "borrowed_hits", persistent = false)]
fn single(item: &Counted) -> u32 {
    item.0 * 2
}

#[test]
fn a_hit_builds_no_owned_key() {
    let (_dir, _manager) = install("borrowed_hits");
    let item = Counted(1);
    assert_eq!(label(&item, "a", Counted(2)), "1-a-2");
    let after_miss = CLONES.load(Ordering::SeqCst);
    assert!(
        after_miss >= 2,
        "the miss built the key: a clone per `Counted` part at least"
    );
    for _ in 0..10 {
        assert_eq!(label(&item, "a", Counted(2)), "1-a-2");
        assert_eq!(label_peek(&item, "a", Counted(2)).as_deref(), Some("1-a-2"));
    }
    assert_eq!(
        CLONES.load(Ordering::SeqCst),
        after_miss,
        "hits and peeks cloned nothing"
    );
    assert_eq!(
        label(&item, "b", Counted(2)),
        "1-b-2",
        "another part of the key misses"
    );
    assert_eq!(label(&item, "a", Counted(3)), "1-a-3");
    assert_eq!(label_cache().stats().hits, 10);

    assert_eq!(single(&item), 2);
    let after_single = CLONES.load(Ordering::SeqCst);
    assert_eq!(single(&item), 2);
    assert_eq!(CLONES.load(Ordering::SeqCst), after_single);
    // One argument: the key is the argument, not a 1-tuple.
    assert_eq!(single_cache().get(&Counted(1)), Some(2));
}

#[cached(manager = "one_argument", persistent = false)]
fn word_length(word: &str) -> usize {
    word.len()
}

#[cached(manager = "one_argument", persistent = false)]
fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

#[test]
fn a_one_argument_function_is_keyed_by_the_argument() {
    let (_dir, _manager) = install("one_argument");
    assert_eq!(fib(10), 55);
    assert_eq!(fib_cache().get(&10), Some(55));
    assert_eq!(word_length("cacheman"), 8);
    let cache: cacheman::Cache<String, usize> = word_length_cache();
    assert_eq!(
        cache.get("cacheman"),
        Some(8),
        "a String key is read with a &str"
    );
    assert!(cache.contains_key("cacheman"));
    assert_eq!(cache.remove("cacheman"), Some(8));
    assert!(!cache.contains_key("cacheman"));
}

static SOURCE: AtomicU64 = AtomicU64::new(1);
static PRICE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = "refresh_peek")]
fn price(item: &str) -> u64 {
    PRICE_RUNS.fetch_add(1, Ordering::SeqCst);
    SOURCE.load(Ordering::SeqCst) * item.len() as u64
}

#[cached(manager = "refresh_peek", persistent = false, result)]
fn fetch(id: u32) -> Result<u64, String> {
    match SOURCE.load(Ordering::SeqCst) {
        0 => Err(format!("source down for {id}")),
        n => Ok(n * u64::from(id)),
    }
}

#[test]
fn refresh_recomputes_and_peek_never_computes() {
    let (_dir, _manager) = install("refresh_peek");
    assert_eq!(price_peek("abc"), None);
    assert_eq!(PRICE_RUNS.load(Ordering::SeqCst), 0, "peek ran no body");
    assert_eq!(price("abc"), 3);
    assert_eq!(price_peek("abc"), Some(3));
    let stats = price_cache().stats();
    assert_eq!((stats.hits, stats.misses), (0, 1), "peeks count neither");

    SOURCE.store(2, Ordering::SeqCst);
    assert_eq!(price("abc"), 3, "still cached");
    assert_eq!(
        price_refresh("abc"),
        6,
        "refresh runs the body whatever is cached"
    );
    assert_eq!(PRICE_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(price("abc"), 6, "and stores what it computed");
    assert_eq!(price_cache().len(), 1);

    assert_eq!(fetch(5), Ok(10));
    SOURCE.store(0, Ordering::SeqCst);
    assert!(
        fetch_refresh(5).is_err(),
        "a failed refresh returns the error"
    );
    assert_eq!(fetch(5), Ok(10), "and keeps what the cache held");
    SOURCE.store(3, Ordering::SeqCst);
    assert_eq!(fetch_refresh(5), Ok(15));
    assert_eq!(fetch_peek(5), Some(15));
}

#[cached(manager = "flags", persistent = false, with_cached_flag)]
fn flagged(n: u32) -> Return<u32> {
    Return::new(n + 1)
}

#[cached(manager = "flags", persistent = false, result, with_cached_flag)]
fn flagged_result(n: u32) -> Result<Return<u32>, String> {
    if n == 0 {
        Err("zero".into())
    } else {
        Ok(Return::new(n * 10))
    }
}

#[cached(manager = "flags", persistent = false, option, with_cached_flag)]
fn flagged_option(n: u32) -> Option<Return<u32>> {
    n.is_multiple_of(2).then(|| Return::new(n / 2))
}

#[cached(manager = "flags", persistent = false, with_cached_flag)]
async fn flagged_async(n: u32) -> Return<u32> {
    Return::new(n + 100)
}

#[cached(manager = "flags", persistent = false, result, with_cached_flag)]
async fn flagged_async_result(n: u32) -> Result<Return<u32>, String> {
    if n == 0 {
        Err("zero".into())
    } else {
        Ok(Return::new(n))
    }
}

#[test]
fn with_cached_flag_says_whether_the_body_ran() {
    let (_dir, _manager) = install("flags");
    let first = flagged(1);
    assert_eq!((first.value, first.was_cached), (2, false));
    let second = flagged(1);
    assert_eq!((*second, second.was_cached), (2, true));
    assert_eq!(
        flagged_cache().get(&1),
        Some(2),
        "the cache holds the value alone"
    );
    let refreshed = flagged_refresh(1);
    assert!(!refreshed.was_cached);
    assert_eq!(flagged_peek(1), Some(2));

    assert_eq!(flagged_result(0), Err("zero".into()));
    assert_eq!(
        flagged_result(0),
        Err("zero".into()),
        "errors are not cached"
    );
    assert!(!flagged_result(3).unwrap().was_cached);
    assert!(flagged_result(3).unwrap().was_cached);

    assert_eq!(flagged_option(1), None);
    assert!(!flagged_option(4).unwrap().was_cached);
    assert_eq!(
        flagged_option(4).map(|r| (r.value, r.was_cached)),
        Some((2, true))
    );

    let first = pollster::block_on(flagged_async(1));
    let second = pollster::block_on(flagged_async(1));
    assert_eq!(
        (first.was_cached, second.was_cached, *second),
        (false, true, 101)
    );
    assert!(pollster::block_on(flagged_async_result(0)).is_err());
    assert!(
        !pollster::block_on(flagged_async_result(2))
            .unwrap()
            .was_cached
    );
    assert!(
        pollster::block_on(flagged_async_result(2))
            .unwrap()
            .was_cached
    );
    assert!(!pollster::block_on(flagged_async_refresh(1)).was_cached);
}

/// Holds the first caller in the body until every caller has missed, so the others wait on
/// its computation (bounded: a stuck test fails instead of hanging).
#[cached(manager = "flags_wait", persistent = false, with_cached_flag)]
fn slow_flagged(n: u32) -> Return<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while slow_flagged_cache().stats().misses < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the other callers never missed"
        );
        std::thread::yield_now();
    }
    Return::new(n)
}

#[test]
fn a_caller_that_waited_for_another_reports_cached() {
    let (_dir, _manager) = install("flags_wait");
    let flags: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| slow_flagged(7).was_cached))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        flags.iter().filter(|cached| !**cached).count(),
        1,
        "{flags:?}"
    );
}

#[cached(manager = "stats_info", persistent = false)]
fn doubled(n: u32) -> u32 {
    n * 2
}

#[test]
fn stats_report_entries_and_the_hit_ratio() {
    let (_dir, _manager) = install("stats_info");
    for n in [1, 2, 1, 1] {
        doubled(n);
    }
    let stats = doubled_cache().stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (2, 2, 2));
    assert_eq!(stats.hit_ratio(), 0.5);
}

#[cached(manager = "declared_types")]
fn flaky(n: u64) -> u64 {
    n + 1
}

#[test]
fn a_declared_cache_refuses_other_types_before_its_first_call() {
    let (_dir, manager) = install("declared_types");
    let err = manager
        .retrieve_cache::<String, String>("flaky")
        .unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("u64"), "{err}");
    assert!(!manager.cache_registered("flaky"));
    assert_eq!(flaky(1), 2, "the function still opens its cache");
    assert_eq!(
        manager.retrieve_cache::<u64, u64>("flaky").unwrap().get(&1),
        Some(2)
    );
}

#[cached(manager = "old_tuple_keys")]
fn halved(n: u64) -> u64 {
    n / 2
}

#[test]
fn a_file_keyed_by_one_tuples_is_dropped_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    // A file as an earlier version wrote it: the same function fingerprint, keys `(u64,)`.
    let writer = cacheman::CacheManager::new("writer", dir.path());
    let options =
        cacheman::CacheOptions::new().fn_fingerprint(__cacheman_decl_halved.fn_fingerprint);
    let old = writer
        .register_custom_cache::<(u64,), u64>("halved", options)
        .unwrap();
    old.insert((10,), 999);
    old.save().unwrap();
    let target = dir.path().join("old_tuple_keys");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(
        writer.cache_file_path("halved").unwrap(),
        target.join("halved.cache"),
    )
    .unwrap();

    let manager = cacheman::CacheManager::new("old_tuple_keys", dir.path());
    manager.set_autosync(cacheman::AutoSync::disabled());
    cacheman::set_cache_manager(manager).unwrap();
    assert_eq!(halved(10), 5, "the old entry was not served");
    assert_eq!(halved_cache().stats().misses, 1);
    halved_cache().save().unwrap();
    assert_eq!(halved_cache().len(), 1);
}

struct Pricing {
    rate: u64,
}

impl Pricing {
    // The key names `self.rate`, so `_refresh` and `_peek` take the receiver too.
    #[cached(
        manager = "method_calls",
        persistent = false,
        key = (self.rate, sku.to_owned()),
        key_type = (u64, String)
    )]
    fn quote(&self, sku: &str) -> u64 {
        self.rate * sku.len() as u64
    }
}

#[test]
fn methods_get_refresh_and_peek_with_their_receiver() {
    let (_dir, _manager) = install("method_calls");
    let pricing = Pricing { rate: 3 };
    assert_eq!(pricing.quote_peek("abc"), None);
    assert_eq!(pricing.quote("abc"), 9);
    assert_eq!(pricing.quote_peek("abc"), Some(9));
    assert_eq!(
        Pricing { rate: 4 }.quote_peek("abc"),
        None,
        "another rate, another key"
    );
    Pricing::quote_cache().insert((3, "abc".to_owned()), 0);
    assert_eq!(pricing.quote("abc"), 0);
    assert_eq!(pricing.quote_refresh("abc"), 9);
    assert_eq!(pricing.quote("abc"), 9);
}
