//! The examples of CacheMan's README, line by line, in Rust.

use std::sync::{Arc, Mutex};

use cacheman::{CacheManager, CacheOptions, Contents};

fn manager() -> (tempfile::TempDir, CacheManager) {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("general_cache", dir.path());
    (dir, manager)
}

#[test]
fn simple_persistent_cache_answers_from_disk_on_the_second_run() {
    let dir = tempfile::tempdir().unwrap();
    for run in 0..2 {
        let manager = CacheManager::new("general_cache", dir.path());
        let cache = manager
            .register_cache::<String, String>("my_simple_cache")
            .unwrap();
        let expected = if run == 0 {
            None
        } else {
            Some("my_value".to_string())
        };
        assert_eq!(cache.get("my_key"), expected);
        cache.insert("my_key".into(), "my_value".into());
        cache.save().unwrap();
        manager.save_cache_contents("my_simple_cache").unwrap();
    }
    assert!(
        dir.path()
            .join("general_cache/my_simple_cache.cache")
            .is_file()
    );
}

#[test]
fn non_persistent_cache_save_is_a_no_op() {
    let (dir, manager) = manager();
    let cache = manager
        .register_custom_cache::<String, String>(
            "my_simple_cache",
            CacheOptions::new().persistent(false),
        )
        .unwrap();
    cache.insert("k".into(), "v".into());
    cache.save().unwrap();
    manager.save_all_cache_contents().unwrap();
    assert!(
        !dir.path().join("general_cache").exists(),
        "a non-persistent cache touched the disk"
    );
}

/// What the custom saver was called with.
type Saved = (String, Contents<String, String>);

#[test]
fn custom_saver_sees_loaded_contents_then_the_new_entry() {
    let (_dir, manager) = manager();
    let saved: Arc<Mutex<Vec<Saved>>> = Arc::default();
    let log = Arc::clone(&saved);
    let cache = manager
        .cache_builder::<String, String>("my_cache")
        .saver(move |name, contents| {
            log.lock()
                .unwrap()
                .push((name.to_owned(), contents.clone()));
            Ok(())
        })
        .loader(|_| Ok(Some(Contents::from([("load".into(), "faked".into())]))))
        .register()
        .unwrap();

    cache.save().unwrap();
    cache.insert("new".into(), "real".into());
    cache.save().unwrap();

    let saved = saved.lock().unwrap();
    let faked = Contents::from([("load".to_string(), "faked".to_string())]);
    let mut both = faked.clone();
    both.insert("new".into(), "real".into());
    assert_eq!(
        *saved,
        vec![("my_cache".into(), faked), ("my_cache".into(), both)]
    );
}

#[test]
fn hooks_registered_by_name_replace_the_defaults() {
    let (dir, manager) = manager();
    let cache = manager
        .retrieve_cache::<String, String>("my_cache")
        .unwrap();
    let saves = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&saves);
    manager
        .register_saver("my_cache", move |_: &str, _: &Contents<String, String>| {
            *counter.lock().unwrap() += 1;
            Ok(())
        })
        .unwrap();
    manager
        .register_loader("my_cache", |_: &str| {
            Ok(Some(Contents::<String, String>::from([(
                "load".into(),
                "faked".into(),
            )])))
        })
        .unwrap();
    manager.reload_cache("my_cache").unwrap();
    assert_eq!(cache.get("load").as_deref(), Some("faked"));
    cache.save().unwrap();
    assert_eq!(*saves.lock().unwrap(), 1);
    assert!(!dir.path().join("general_cache/my_cache.cache").exists());
}

/// CacheMan's "Dependent caches" example: 0, still 0, `{}`, 5, `{"processed": 5}`.
#[test]
fn dependent_caches_story() {
    let (_dir, manager) = manager();
    let edge_cache = manager.retrieve_cache::<String, u64>("edge_cache").unwrap();
    let root_cache = manager.register_cache::<String, u64>("root_cache").unwrap();
    manager
        .register_dependent_cache("root_cache", "edge_cache")
        .unwrap();

    let set_processed_value = || {
        edge_cache.get_or_insert_with("processed".into(), || {
            root_cache.get("raw").unwrap_or(0) * 5
        })
    };

    assert_eq!(set_processed_value(), 0); // 0 without raw value
    root_cache.insert("raw".into(), 1);
    assert_eq!(set_processed_value(), 0); // still 0 because it's cached in edge

    root_cache.invalidate().unwrap(); // invalidates dependent caches
    assert_eq!(format!("{edge_cache:?}"), "{}");
    root_cache.insert("raw".into(), 1);
    assert_eq!(set_processed_value(), 5);
    assert_eq!(format!("{edge_cache:?}"), r#"{"processed": 5}"#);
}

#[test]
fn custom_base_directory_namespaces_by_manager() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("secret/cache/location");
    let manager = CacheManager::new("general_cache", &base);
    let cache = manager
        .register_cache::<String, String>("my_cache")
        .unwrap();
    cache.insert("new".into(), "real".into());
    cache.save().unwrap();
    assert!(base.join("general_cache/my_cache.cache").is_file());
}
