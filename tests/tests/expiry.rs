//! Expired entries leave memory and files: a cache with a time-to-live over open-ended keys
//! stays as large as its live entries (issue 14, item 4).

use std::time::Duration;

use cacheman::{AutoSync, CacheManager, CacheOptions, ManualClock};

#[test]
fn a_million_keys_over_hours_leave_only_the_live_ones_in_memory_and_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let options = || {
        CacheOptions::new()
            .ttl(Duration::from_secs(60))
            .clock(clock.clone())
            .autosync(AutoSync::disabled())
    };
    let manager = CacheManager::new("app", dir.path());
    let cache = manager
        .register_custom_cache::<u64, u64>("sessions", options())
        .unwrap();
    // One new key every 10 ms for 10,000 s (2.8 hours): 6,000 are younger than 60 s.
    let live = 6_000;
    for key in 0..1_000_000u64 {
        clock.advance(Duration::from_millis(10));
        cache.insert(key, key);
        if key % 250_000 == 249_999 {
            assert_eq!(cache.len(), live, "after {key} inserts");
            cache.save().unwrap();
        }
    }
    assert_eq!(cache.len(), live);
    let mut keys = cache.keys();
    keys.sort_unstable();
    assert_eq!(
        keys,
        (1_000_000 - live as u64..1_000_000).collect::<Vec<_>>()
    );

    cache.save().unwrap();
    let file = dir.path().join("app").join("sessions.cache");
    let size = std::fs::metadata(&file).unwrap().len();
    // A row is a few bytes of varints and a stamp: a million rows would be megabytes.
    assert!(size < 64 * live as u64, "{size} bytes on disk");
    let reopened = CacheManager::new("app", dir.path())
        .register_custom_cache::<u64, u64>("sessions", options())
        .unwrap();
    assert_eq!(reopened.len(), live);

    clock.advance(Duration::from_secs(60));
    assert_eq!(cache.len(), 0);
    assert!(cache.is_empty());
}

#[test]
fn an_expired_entry_is_not_counted_although_nothing_was_inserted_since() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let manager = CacheManager::new("app", dir.path());
    let options = CacheOptions::new()
        .ttl(Duration::from_secs(1))
        .clock(clock.clone())
        .persistent(false);
    let cache = manager
        .register_custom_cache::<u32, u32>("c", options)
        .unwrap();
    cache.extend([(1, 1), (2, 2)]);
    clock.advance(Duration::from_millis(999));
    assert_eq!(cache.len(), 2);
    clock.advance(Duration::from_millis(1));
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.get(&1), None);
}

#[test]
fn a_bounded_expiring_cache_keeps_both_limits_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let options = || {
        CacheOptions::new()
            .ttl(Duration::from_secs(60))
            .capacity(100)
            .clock(clock.clone())
    };
    {
        let manager = CacheManager::new("app", dir.path());
        let cache = manager
            .register_custom_cache::<u32, u32>("both", options())
            .unwrap();
        cache.extend((0..50).map(|k| (k, k)));
        clock.advance(Duration::from_secs(30));
        cache.extend((50..1_000).map(|k| (k, k)));
        assert_eq!(cache.len(), 100);
        cache.save().unwrap();
    }
    clock.advance(Duration::from_secs(20));
    let manager = CacheManager::new("app", dir.path());
    let cache = manager
        .register_custom_cache::<u32, u32>("both", options())
        .unwrap();
    assert_eq!(cache.len(), 100, "the stamps came back with the entries");
    assert_eq!(cache.get(&999), Some(999));
    clock.advance(Duration::from_secs(39));
    assert_eq!(cache.len(), 100, "the kept entries are 59 s old");
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.len(), 0);
}
