//! `result_fallback`: when a `result` function's body fails, the expired value still held is
//! returned instead of the error (issue 20, item 3). "Still held": expired less than one more
//! time-to-live ago, and not evicted, removed or invalidated since.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use cacheman::{ManualClock, cached};
use tests::support::{capture_warnings, install, warned_about};

static UP: AtomicBool = AtomicBool::new(true);
static CALLS: AtomicUsize = AtomicUsize::new(0);

fn backend(id: u32) -> Result<String, String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    if UP.load(Ordering::SeqCst) {
        Ok(format!(
            "price {id} at call {}",
            CALLS.load(Ordering::SeqCst)
        ))
    } else {
        Err("backend down".into())
    }
}

#[cached(manager = "fallback", result, ttl_secs = 60, result_fallback)]
fn price(id: u32) -> Result<String, String> {
    backend(id)
}

#[cached(manager = "fallback", result, ttl_secs = 60, result_fallback)]
async fn price_async(id: u32) -> Result<String, String> {
    backend(id)
}

#[cached(manager = "fallback", result, ttl_secs = 60)]
fn price_without_fallback(id: u32) -> Result<String, String> {
    backend(id)
}

#[cached(
    manager = "fallback",
    result,
    ttl_secs = 60,
    capacity = 1,
    result_fallback
)]
fn price_bounded(id: u32) -> Result<String, String> {
    backend(id)
}

// One test: the functions share the backend's switch and the manager's clock.
#[test]
fn the_last_value_is_served_when_the_body_fails() {
    capture_warnings();
    let (_dir, manager) = install("fallback");
    let clock = ManualClock::new();
    manager.set_clock(clock.clone());

    let first = price(1).unwrap();
    let first_async = pollster::block_on(price_async(1)).unwrap();
    price_without_fallback(1).unwrap();
    clock.advance(Duration::from_secs(61)); // expired, still held
    UP.store(false, Ordering::SeqCst);
    assert!(!warned_about("price"));
    assert_eq!(
        price(1),
        Ok(first.clone()),
        "the expired value, not the error"
    );
    assert!(warned_about("price"), "serving an expired value is logged");
    assert_eq!(pollster::block_on(price_async(1)), Ok(first_async));
    assert_eq!(price_without_fallback(1), Err("backend down".into()));
    assert_eq!(price(2), Err("backend down".into()), "nothing held for 2");
    assert_eq!(price_cache().len(), 0, "an expired value is not counted");
    assert!(price_cache().snapshot().is_empty(), "nor copied out");

    // The fallback was not stored as fresh: the backend is asked again, and its new value kept.
    UP.store(true, Ordering::SeqCst);
    let second = price(1).unwrap();
    assert_ne!(second, first);
    assert_eq!(price(1), Ok(second.clone()));

    // Held for one more time-to-live after it expires, then gone.
    clock.advance(Duration::from_secs(119));
    UP.store(false, Ordering::SeqCst);
    assert_eq!(price(1), Ok(second));
    clock.advance(Duration::from_secs(1));
    assert_eq!(price(1), Err("backend down".into()));

    // An evicted value is not held: capacity 1, key 1 expires, key 2 takes its place.
    UP.store(true, Ordering::SeqCst);
    price_bounded(1).unwrap();
    clock.advance(Duration::from_secs(61));
    price_bounded(2).unwrap();
    UP.store(false, Ordering::SeqCst);
    assert_eq!(price_bounded(1), Err("backend down".into()));

    // Invalidation drops held values too.
    UP.store(true, Ordering::SeqCst);
    price(3).unwrap();
    clock.advance(Duration::from_secs(61));
    price_cache().invalidate().unwrap();
    UP.store(false, Ordering::SeqCst);
    assert_eq!(price(3), Err("backend down".into()));
}
