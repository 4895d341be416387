//! What is saved comes back, in every codec, and only what should.

use std::time::Duration;

use cacheman::{CacheManager, CacheOptions, Codec, ManualClock};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: i32,
    y: i32,
}

#[test]
fn contents_survive_a_reopened_manager() {
    let dir = tempfile::tempdir().unwrap();
    {
        let manager = CacheManager::new("app", dir.path());
        let cache = manager.register_cache::<String, Point>("points").unwrap();
        cache.insert("origin".into(), Point { x: 0, y: 0 });
        cache.insert("far".into(), Point { x: 1_000, y: -7 });
        manager.save_all_cache_contents().unwrap();
    }
    let manager = CacheManager::new("app", dir.path());
    let cache = manager.register_cache::<String, Point>("points").unwrap();
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.get("far"), Some(Point { x: 1_000, y: -7 }));
    assert_eq!(cache.stats().loads, 1);
}

#[test]
fn every_codec_round_trips() {
    for codec in [Codec::Postcard, Codec::Json, Codec::Csv] {
        let dir = tempfile::tempdir().unwrap();
        let options = || CacheOptions::new().codec(codec);
        let manager = CacheManager::new("app", dir.path());
        let cache = manager
            .register_custom_cache::<u64, String>("c", options())
            .unwrap();
        cache.extend((0..100).map(|n| (n, format!("value, \"{n}\"\n"))));
        cache.save().unwrap();

        let again = CacheManager::new("app", dir.path());
        let back = again
            .register_custom_cache::<u64, String>("c", options())
            .unwrap();
        assert_eq!(back.snapshot(), cache.snapshot(), "{codec:?}");
    }
}

#[test]
fn csv_files_are_plain_rows_and_json_files_are_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let csv = manager
        .register_custom_cache::<String, u32>("csv", CacheOptions::new().codec(Codec::Csv))
        .unwrap();
    csv.insert("a".into(), 1);
    csv.save().unwrap();
    let json = manager
        .register_custom_cache::<String, u32>("json", CacheOptions::new().codec(Codec::Json))
        .unwrap();
    json.insert("a".into(), 1);
    json.save().unwrap();
    let payload = |name: &str| {
        let bytes = std::fs::read(manager.cache_file_path(name).unwrap()).unwrap();
        String::from_utf8(bytes[68..].to_vec()).unwrap()
    };
    assert_eq!(payload("csv"), "a,1\n");
    assert_eq!(payload("json"), r#"[["a",1]]"#);
}

#[test]
fn a_file_in_another_codec_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let cache = manager.register_cache::<u8, u8>("c").unwrap();
    cache.insert(1, 1);
    cache.save().unwrap();

    let other = CacheManager::new("app", dir.path());
    let json = other
        .register_custom_cache::<u8, u8>("c", CacheOptions::new().codec(Codec::Json))
        .unwrap();
    assert!(json.is_empty());
    let err = other.reload_cache("c").unwrap_err();
    assert!(err.to_string().contains("another codec"), "{err}");
}

#[test]
fn save_on_blank_false_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let cache = manager
        .register_custom_cache::<u8, u8>("c", CacheOptions::new().save_on_blank(false))
        .unwrap();
    cache.insert(1, 1);
    cache.save().unwrap();
    cache.clear();
    cache.save().unwrap();
    cache.reload().unwrap();
    assert_eq!(cache.get(&1), Some(1));
}

#[test]
fn an_empty_cache_is_saved_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let cache = manager.register_cache::<u8, u8>("c").unwrap();
    cache.insert(1, 1);
    cache.save().unwrap();
    cache.clear();
    cache.save().unwrap();
    cache.reload().unwrap();
    assert!(cache.is_empty());
}

#[test]
fn expiry_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let options = || {
        CacheOptions::new()
            .ttl(Duration::from_secs(60))
            .clock(clock.clone())
    };
    {
        let manager = CacheManager::new("app", dir.path());
        let cache = manager
            .register_custom_cache::<u8, u8>("c", options())
            .unwrap();
        cache.insert(1, 1);
        clock.advance(Duration::from_secs(30));
        cache.insert(2, 2);
        cache.save().unwrap();
    }
    clock.advance(Duration::from_secs(40)); // entry 1 is 70 s old, entry 2 is 40 s old
    let manager = CacheManager::new("app", dir.path());
    let cache = manager
        .register_custom_cache::<u8, u8>("c", options())
        .unwrap();
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get(&2), Some(2));
    clock.advance(Duration::from_secs(20));
    assert_eq!(cache.get(&2), None);
    assert!(cache.snapshot().is_empty());
}

#[test]
fn a_ttl_cache_does_not_read_a_file_without_stamps() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let plain = manager.register_cache::<u8, u8>("c").unwrap();
    plain.insert(1, 1);
    plain.save().unwrap();
    let other = CacheManager::new("app", dir.path());
    let ttl = other
        .register_custom_cache::<u8, u8>("c", CacheOptions::new().ttl(Duration::from_secs(1)))
        .unwrap();
    assert!(ttl.is_empty());
}

#[test]
fn capacity_evicts_the_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let cache = manager
        .register_custom_cache::<u32, u32>("lru", CacheOptions::new().capacity(3))
        .unwrap();
    cache.extend([(1, 1), (2, 2), (3, 3)]);
    cache.get(&1);
    cache.insert(4, 4);
    let mut keys = cache.keys();
    keys.sort();
    assert_eq!(keys, vec![1, 3, 4]);
    assert_eq!(cache.stats().evictions, 1);

    // A bounded cache loads at most its capacity.
    cache.save().unwrap();
    let other = CacheManager::new("app", dir.path());
    let smaller = other
        .register_custom_cache::<u32, u32>("lru", CacheOptions::new().capacity(2))
        .unwrap();
    assert_eq!(smaller.len(), 2);
}

#[test]
fn a_large_capacity_is_honoured_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let cache = manager
        .register_custom_cache::<u32, u32>("big", CacheOptions::new().capacity(100_000))
        .unwrap();
    cache.extend((0..150_000).map(|n| (n, n)));
    assert!(cache.len() <= 100_000, "{} entries", cache.len());
    assert!(cache.len() >= 90_000, "only {} entries kept", cache.len());
}

#[test]
fn capacity_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let err = manager
        .register_custom_cache::<u32, u32>("c", CacheOptions::new().capacity(0))
        .unwrap_err();
    assert!(err.to_string().contains("capacity of 0"), "{err}");
}

#[test]
fn validator_rejection_starts_from_the_builder() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let cache = manager.register_cache::<u32, u32>("c").unwrap();
    cache.insert(1, 1_000);
    cache.save().unwrap();

    let other = CacheManager::new("app", dir.path());
    let cache = other
        .cache_builder::<u32, u32>("c")
        .validator(|contents| contents.values().all(|v| *v < 100))
        .builder(|_| Ok([(0, 0)].into()))
        .register()
        .unwrap();
    assert_eq!(cache.snapshot(), [(0, 0)].into());
    // Built contents are pending until saved.
    assert_eq!(cache.pending_changes(), 1);
}

#[test]
fn processors_transform_on_the_way_out_and_in() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let cache = manager
        .cache_builder::<String, String>("c")
        .pre_processor(|c| c.into_iter().map(|(k, v)| (k, v.to_uppercase())).collect())
        .post_processor(|c| c.into_iter().map(|(k, v)| (k, format!("<{v}>"))).collect())
        .register()
        .unwrap();
    cache.insert("a".into(), "x".into());
    cache.save().unwrap();
    cache.reload().unwrap();
    assert_eq!(cache.get("a").as_deref(), Some("<X>"));
}

#[test]
fn a_failing_loader_is_an_error_on_reload_and_a_warning_on_registration() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let cache = manager
        .cache_builder::<u8, u8>("c")
        .loader(|_| Err("the database is down".into()))
        .register()
        .unwrap();
    assert!(cache.is_empty());
    cache.insert(1, 1);
    let err = cache.reload().unwrap_err();
    assert!(err.to_string().contains("the database is down"), "{err}");
    assert!(err.to_string().contains("loader of cache `c`"), "{err}");
    assert_eq!(
        cache.get(&1),
        Some(1),
        "a failed reload must leave memory as it was"
    );
}

/// A value that refuses to be serialized when it is negative.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Picky(i64);

impl Serialize for Picky {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 < 0 {
            return Err(serde::ser::Error::custom("negative values are not saved"));
        }
        serializer.serialize_i64(self.0)
    }
}

#[test]
fn a_value_that_fails_to_encode_fails_the_save_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let cache = manager.register_cache::<u32, Picky>("picky").unwrap();
    // Enough entries that the snapshot is copied in many chunks before it meets the bad one.
    cache.extend((0..5_000).map(|i| (i, Picky(i64::from(i)))));
    cache.save().unwrap();
    let saves = cache.stats().saves;
    cache.insert(7, Picky(-1));
    cache.insert(5_000, Picky(5_000));
    let err = cache.save().unwrap_err();
    let message = err.to_string();
    assert!(message.contains("`picky`"), "{message}");
    // Postcard keeps no message of a type's own serialization error, only that there was one.
    assert!(
        message.contains("encode") && message.contains("postcard"),
        "{message}"
    );
    assert_eq!(
        cache.stats().saves,
        saves,
        "a failed save counted as a save"
    );

    // The file still holds the last good save.
    let reader = CacheManager::new("app", dir.path());
    let seen = reader.register_cache::<u32, Picky>("picky").unwrap();
    assert_eq!((seen.len(), seen.get(&7)), (5_000, Some(Picky(7))));

    // Once the value is fixed, the next save carries both changes.
    cache.insert(7, Picky(70));
    cache.save().unwrap();
    let reader = CacheManager::new("app", dir.path());
    let seen = reader.register_cache::<u32, Picky>("picky").unwrap();
    assert_eq!(seen.len(), 5_001);
    assert_eq!(seen.get(&7), Some(Picky(70)));
}

/// Keys 0..1_000 in a cache of capacity 1_000, keys 0..100 of them used twice more.
fn bounded_with_a_hot_set(manager: &CacheManager) -> cacheman::Cache<u32, u32> {
    let cache = manager
        .register_custom_cache::<u32, u32>("hot", CacheOptions::new().capacity(1_000))
        .unwrap();
    cache.extend((0..1_000).map(|n| (n, n)));
    cache
}

fn use_twice(cache: &cacheman::Cache<u32, u32>, keys: std::ops::Range<u32>) {
    for _ in 0..2 {
        for n in keys.clone() {
            assert_eq!(cache.get(&n), Some(n));
        }
    }
}

/// Registers the cache again in a new manager (a restart), inserts 900 new keys, and returns
/// how many of the hot keys 0..100 are still there.
fn hot_keys_left_after_a_restart(dir: &std::path::Path) -> usize {
    let manager = CacheManager::new("app", dir);
    let cache = manager
        .register_custom_cache::<u32, u32>("hot", CacheOptions::new().capacity(1_000))
        .unwrap();
    assert_eq!(cache.len(), 1_000);
    for n in 1_000..1_900 {
        cache.insert(n, n);
    }
    assert_eq!(cache.len(), 1_000);
    (0..100).filter(|n| cache.get(n).is_some()).count()
}

#[test]
fn a_reloaded_bounded_cache_keeps_the_entries_it_used_not_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let cache = bounded_with_a_hot_set(&manager);
    use_twice(&cache, 0..100);
    cache.save().unwrap();
    drop((cache, manager));
    // The use counts were saved: the 900 inserts evict the unused entries first.
    assert_eq!(hot_keys_left_after_a_restart(dir.path()), 100);
}

#[test]
fn use_counts_of_entries_saved_in_the_journal_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("app", dir.path());
    let cache = bounded_with_a_hot_set(&manager);
    cache.save().unwrap(); // the snapshot: no uses yet
    // Rewritten (a use) and read (another): these rows go to the journal with their counts.
    for n in 0..100 {
        cache.insert(n, n);
        assert_eq!(cache.get(&n), Some(n));
    }
    // The others are put back new (no uses), so that every row loads from the journal, in
    // an order that says nothing about which were used.
    for n in 100..1_000 {
        cache.remove(&n);
        cache.insert(n, n);
    }
    cache.save().unwrap();
    let journal = manager
        .cache_file_path("hot")
        .unwrap()
        .with_extension("journal");
    assert!(journal.exists(), "the second save appended");
    drop((cache, manager));
    assert_eq!(hot_keys_left_after_a_restart(dir.path()), 100);
}
