//! Sliding expiry (`refresh`): a hit restarts the entry's time-to-live, so hot entries stay
//! and idle ones expire; the restarted stamps survive a restart (issue 20, item 2).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cacheman::{CacheManager, CacheOptions, Error, ManualClock, cached};
use tests::support::install;

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = "sliding", ttl_secs = 60, refresh = true)]
fn session(id: u32) -> u32 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    id * 10
}

#[test]
fn a_hit_restarts_the_time_to_live_of_a_cached_function() {
    let (_dir, manager) = install("sliding");
    let clock = ManualClock::new();
    manager.set_clock(clock.clone());
    session(1);
    session(2);
    for _ in 0..10 {
        clock.advance(Duration::from_secs(45));
        assert_eq!(session(1), 10, "read every 45 s");
    }
    assert_eq!(RUNS.load(Ordering::SeqCst), 2, "1 never expired");
    assert_eq!(session_cache().len(), 1, "2, idle for 450 s, expired");
    clock.advance(Duration::from_secs(60));
    assert_eq!(session(1), 10);
    assert_eq!(RUNS.load(Ordering::SeqCst), 3, "idle for 60 s: expired");
}

#[test]
fn refreshed_stamps_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let options = || {
        CacheOptions::new()
            .ttl(Duration::from_secs(60))
            .refresh(true)
            .clock(clock.clone())
    };
    {
        let manager = CacheManager::new("app", dir.path());
        let cache = manager
            .register_custom_cache::<u32, u32>("sliding", options())
            .unwrap();
        cache.extend([(1, 1), (2, 2)]);
        clock.advance(Duration::from_secs(50));
        assert_eq!(cache.get(&1), Some(1)); // 1's stamp moves to 50 s
        cache.save().unwrap();
    }
    clock.advance(Duration::from_secs(30)); // 80 s: 2 inserted 80 s ago, 1 read 30 s ago
    let manager = CacheManager::new("app", dir.path());
    let cache = manager
        .register_custom_cache::<u32, u32>("sliding", options())
        .unwrap();
    assert_eq!(cache.get(&2), None);
    assert_eq!(cache.get(&1), Some(1));
    assert_eq!(cache.len(), 1);
}

#[test]
fn without_refresh_a_hit_does_not_extend_the_time_to_live() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let manager = CacheManager::new("app", dir.path());
    let options = CacheOptions::new()
        .ttl(Duration::from_secs(60))
        .clock(clock.clone());
    let cache = manager
        .register_custom_cache::<u32, u32>("fixed", options)
        .unwrap();
    cache.insert(1, 1);
    clock.advance(Duration::from_secs(50));
    assert_eq!(cache.get(&1), Some(1));
    clock.advance(Duration::from_secs(10));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn refresh_without_a_time_to_live_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let err = manager
        .register_custom_cache::<u32, u32>("c", CacheOptions::new().refresh(true))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidOptions { .. }), "{err:?}");
    assert!(err.to_string().contains("give a `ttl` too"), "{err}");
}
