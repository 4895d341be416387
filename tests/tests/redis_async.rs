//! Async callers of caches on a real Redis server (feature `redis`): a task waiting for a round
//! trip does not hold its executor's thread. Run with
//! `cargo test -p tests --features redis --test redis_async`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use cacheman::{CacheManager, Redis};
use tests::fleet::unique;
use tests::redis_server::start_or_skip;

/// Polls `future` once.
fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn an_async_caller_waits_for_the_server_without_holding_its_thread() {
    // A server of this test's own: pausing it must not stall other tests.
    let Some(server) = start_or_skip("async_round_trip_off_the_thread") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::new(server.url()).command_timeout(Duration::from_secs(2));
    let name = unique("redis_async");
    let manager = CacheManager::new(&name, dir.path()).with_redis(redis);
    let cache = manager.register_cache::<u32, u32>("c").unwrap();
    cache.get_or_insert_with(0, || 0); // connected, scripts loaded

    // The server holds every script until it is unpaused: a call that blocked its thread
    // would not return from its first poll until the command timed out (then computed).
    server.cli(&["CLIENT", "PAUSE", "60000", "WRITE"]);
    let mut lookup = pin!(cache.get_or_insert_with_async(1, || async { 10 }));
    let first = poll_once(lookup.as_mut());
    server.cli(&["CLIENT", "UNPAUSE"]);
    assert!(
        first.is_pending(),
        "the first poll waited for the server on the task's thread"
    );
    assert_eq!(pollster::block_on(lookup), 10);
    assert_eq!(cache.stats().store_errors, 0);

    // Through the lease and the put too: another host finds the value.
    let (_other_dir, other) = {
        let dir = tempfile::tempdir().unwrap();
        let manager = CacheManager::new(&name, dir.path()).with_redis(server.url());
        (dir, manager)
    };
    let on_other = other.register_cache::<u32, u32>("c").unwrap();
    assert_eq!(on_other.get(&1), Some(10));

    // A task dropped while it holds the key's lease (its computation never ends) lets the
    // lease go, so the key is not stuck behind it for other hosts.
    let leases = |server: &tests::redis_server::RedisServer| {
        server.cli(&[
            "--scan",
            "--pattern",
            &format!("cacheman:{{{name}:c}}:*:l:*"),
        ])
    };
    {
        let mut abandoned = pin!(cache.get_or_insert_with_async(2, std::future::pending));
        tests::child::poll(|| {
            assert!(poll_once(abandoned.as_mut()).is_pending());
            (!leases(&server).trim().is_empty()).then_some(())
        })
        .expect("the task never took the lease");
    }
    tests::child::poll(|| leases(&server).trim().is_empty().then_some(()))
        .expect("the lease of a dropped task was never let go");
    let mut ran = false;
    let value = on_other.get_or_insert_with(2, || {
        ran = true;
        20
    });
    assert!(ran && value == 20);

    // An async `#[cached]` function's lookup too (its cache opens on this server).
    // SAFETY: the one test of this binary; nothing else reads the environment now.
    unsafe { std::env::set_var("CACHEMAN_REDIS_URL", server.url()) };
    assert_eq!(pollster::block_on(tripled(1)), 3);
    server.cli(&["CLIENT", "PAUSE", "60000", "WRITE"]);
    let mut call = pin!(tripled(5));
    let first = poll_once(call.as_mut());
    server.cli(&["CLIENT", "UNPAUSE"]);
    assert!(
        first.is_pending(),
        "the async #[cached] lookup waited for the server on the task's thread"
    );
    assert_eq!(pollster::block_on(call), 15);
    assert_eq!(tripled_cache().stats().store_errors, 0);
}

#[cacheman::cached(store = "redis", manager = "redis_async_macro")]
async fn tripled(n: u32) -> u32 {
    n * 3
}

/// A borrowed argument: the lookup's view borrows it, and must not be held across the wait.
#[cacheman::cached(store = "redis", manager = "redis_async_macro")]
async fn length(text: &str) -> usize {
    text.len()
}

#[test]
fn an_async_cached_call_on_redis_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&tripled(1));
    assert_send(&length("abc"));
}
