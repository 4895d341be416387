//! `#[cached]` functions under load and limits: one body run for a thundering herd, recursion,
//! capacity (least recently used eviction) and time-to-live with an injected clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use cacheman::{ManualClock, cached};
use tests::support::install;

const THREADS: usize = 8;
static HERD_ARRIVED: AtomicUsize = AtomicUsize::new(0);
static HERD_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = "herd")]
fn expensive(n: u64) -> u64 {
    HERD_RUNS.fetch_add(1, Ordering::SeqCst);
    // Hold the computation until every thread has called, so they all miss together.
    while HERD_ARRIVED.load(Ordering::SeqCst) < THREADS {
        std::thread::yield_now();
    }
    n * 1000
}

/// Runs `call` on `THREADS` threads released together, each counting itself in `arrived` just
/// before it calls; returns what each call returned.
fn herd<T: Send + 'static>(arrived: &'static AtomicUsize, call: fn() -> T) -> Vec<T> {
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                arrived.fetch_add(1, Ordering::SeqCst);
                call()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn a_thundering_herd_runs_the_body_once() {
    let (_dir, _manager) = install("herd");
    assert_eq!(herd(&HERD_ARRIVED, || expensive(7)), [7000; THREADS]);
    assert_eq!(HERD_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(expensive_cache().stats().inserts, 1);
}

static FIB_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = "recursion")]
fn fib(n: u64) -> u64 {
    FIB_RUNS.fetch_add(1, Ordering::SeqCst);
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

#[test]
fn recursion_goes_through_the_cache_without_deadlock() {
    let (_dir, _manager) = install("recursion");
    assert_eq!(fib(90), 2_880_067_194_370_816_120);
    assert_eq!(FIB_RUNS.load(Ordering::SeqCst), 91, "each n computed once");
    assert_eq!(fib(90), 2_880_067_194_370_816_120);
    assert_eq!(FIB_RUNS.load(Ordering::SeqCst), 91);
    assert_eq!(fib_cache().len(), 91);
}

static BOUNDED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = "bounded", capacity = 2, persistent = false)]
fn bounded(n: u32) -> u32 {
    BOUNDED_RUNS.fetch_add(1, Ordering::SeqCst);
    n + 1
}

#[test]
fn capacity_evicts_the_least_recently_used_entry() {
    let (_dir, _manager) = install("bounded");
    bounded(1);
    bounded(2);
    bounded(1); // 1 is now more recently used than 2
    bounded(3); // evicts 2
    assert_eq!(BOUNDED_RUNS.load(Ordering::SeqCst), 3);
    assert_eq!(bounded_cache().len(), 2);
    assert_eq!(bounded_cache().stats().evictions, 1);
    bounded(1);
    assert_eq!(BOUNDED_RUNS.load(Ordering::SeqCst), 3, "1 was kept");
    bounded(2);
    assert_eq!(BOUNDED_RUNS.load(Ordering::SeqCst), 4, "2 was evicted");
}

static EXPIRING_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = "expiring", ttl_secs = 60)]
fn expiring(n: u32) -> u32 {
    EXPIRING_RUNS.fetch_add(1, Ordering::SeqCst);
    n * 2
}

#[test]
fn entries_expire_after_their_ttl_on_the_injected_clock() {
    let (_dir, manager) = install("expiring");
    let clock = ManualClock::new();
    manager.set_clock(clock.clone());
    assert_eq!(expiring(4), 8);
    clock.advance(Duration::from_secs(59));
    assert_eq!(expiring(4), 8);
    assert_eq!(EXPIRING_RUNS.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(2));
    assert_eq!(expiring(4), 8);
    assert_eq!(EXPIRING_RUNS.load(Ordering::SeqCst), 2, "the entry expired");
}

static ASYNC_ARRIVED: AtomicUsize = AtomicUsize::new(0);
static ASYNC_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = "async_herd", persistent = false)]
async fn fetched(n: u64) -> u64 {
    ASYNC_RUNS.fetch_add(1, Ordering::SeqCst);
    while ASYNC_ARRIVED.load(Ordering::SeqCst) < THREADS {
        std::thread::yield_now();
    }
    n + 1
}

#[test]
fn concurrent_async_callers_await_one_computation() {
    let (_dir, _manager) = install("async_herd");
    assert_eq!(
        herd(&ASYNC_ARRIVED, || pollster::block_on(fetched(1))),
        [2; THREADS]
    );
    assert_eq!(ASYNC_RUNS.load(Ordering::SeqCst), 1);
}
