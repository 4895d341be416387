//! Invalidation follows dependency edges: transitively, through diamonds, on disk too, and
//! never around a cycle.

use cacheman::{CacheManager, Error};

fn setup(edges: &[(&str, &str)]) -> (tempfile::TempDir, CacheManager) {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("deps", dir.path());
    for (cache, dependent) in edges {
        manager.register_dependent_cache(cache, dependent).unwrap();
    }
    (dir, manager)
}

/// What a fresh process would load from the file of cache `name`: `None` if it cannot be read.
fn stored_len(dir: &tempfile::TempDir, name: &str) -> Option<usize> {
    let fresh = CacheManager::new("deps", dir.path());
    let cache = fresh.register_cache::<u32, u32>(name).unwrap();
    cache.reload().ok().map(|()| cache.len())
}

fn filled(manager: &CacheManager, name: &str) -> cacheman::Cache<u32, u32> {
    let cache = manager.retrieve_cache::<u32, u32>(name).unwrap();
    cache.insert(1, 1);
    cache.save().unwrap();
    cache
}

#[test]
fn invalidation_reaches_every_transitive_dependent_and_nothing_else() {
    let (dir, manager) = setup(&[("a", "b"), ("b", "c"), ("c", "d"), ("x", "a")]);
    let caches: Vec<_> = ["x", "a", "b", "c", "d", "unrelated"]
        .iter()
        .map(|n| filled(&manager, n))
        .collect();
    manager.invalidate_cache("a").unwrap();
    let lens: Vec<usize> = caches.iter().map(|c| c.len()).collect();
    assert_eq!(lens, vec![1, 0, 0, 0, 0, 1]);
    // On disk too: each file now holds an empty cache at a newer epoch.
    for name in ["a", "b", "c", "d"] {
        assert_eq!(
            stored_len(&dir, name),
            Some(0),
            "{name}'s file kept its entries"
        );
    }
    assert_eq!(stored_len(&dir, "x"), Some(1));
}

#[test]
fn a_diamond_clears_its_tip_once() {
    let (_dir, manager) = setup(&[
        ("root", "left"),
        ("root", "right"),
        ("left", "tip"),
        ("right", "tip"),
    ]);
    let tip = filled(&manager, "tip");
    for name in ["root", "left", "right"] {
        filled(&manager, name);
    }
    let before = tip.pending_changes();
    manager.invalidate_cache("root").unwrap();
    assert!(tip.is_empty());
    // One invalidation of the tip, not two.
    assert_eq!(tip.pending_changes(), before + 1);
    assert_eq!(manager.dependents_of("root").len(), 3);
}

#[test]
fn a_long_chain_is_cleared_to_its_end() {
    let names: Vec<String> = (0..200).map(|i| format!("c{i}")).collect();
    let (_dir, manager) = setup(&[]);
    for pair in names.windows(2) {
        manager
            .register_dependent_cache(&pair[0], &pair[1])
            .unwrap();
    }
    let last = filled(&manager, "c199");
    manager.invalidate_cache("c0").unwrap();
    assert!(last.is_empty());
}

#[test]
fn a_stale_file_of_a_dependent_never_comes_back() {
    let (dir, manager) = setup(&[("root", "edge")]);
    filled(&manager, "root");
    let edge = filled(&manager, "edge");
    manager.invalidate_cache("root").unwrap();
    edge.reload().unwrap();
    assert!(edge.is_empty());

    // A fresh process sees no stale entry either.
    let later = CacheManager::new("deps", dir.path());
    let edge = later.register_cache::<u32, u32>("edge").unwrap();
    assert!(edge.is_empty());
}

#[test]
fn dependents_not_registered_in_this_process_are_emptied_on_disk() {
    let (dir, manager) = setup(&[("root", "edge")]);
    filled(&manager, "root");
    filled(&manager, "edge");

    let later = CacheManager::new("deps", dir.path());
    later.register_dependent_cache("root", "edge").unwrap();
    later.register_cache::<u32, u32>("root").unwrap();
    later.invalidate_cache("root").unwrap();
    assert_eq!(stored_len(&dir, "edge"), Some(0));
}

#[test]
fn edges_may_be_declared_before_or_after_registration() {
    let (_dir, manager) = setup(&[]);
    let root = filled(&manager, "root");
    let edge = filled(&manager, "edge");
    manager.register_dependent_cache("root", "edge").unwrap();
    root.invalidate().unwrap();
    assert!(edge.is_empty());
}

#[test]
fn cycles_are_refused_with_their_path() {
    let (_dir, manager) = setup(&[("a", "b"), ("b", "c")]);
    let err = manager.register_dependent_cache("c", "a").unwrap_err();
    match &err {
        Error::DependencyCycle { path, .. } => assert_eq!(path, &["c", "a", "b", "c"]),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains("`c` -> `a` -> `b` -> `c`"),
        "{err}"
    );
    let err = manager.register_dependent_cache("z", "z").unwrap_err();
    assert!(matches!(err, Error::DependencyCycle { .. }));
}

#[test]
fn exclude_applies_to_the_named_cache_only() {
    let (_dir, manager) = setup(&[("root", "edge")]);
    let root = filled(&manager, "root");
    let edge = filled(&manager, "edge");
    manager.delete_saved_cache_content_alone("root").unwrap();
    assert!(manager.cache_file_path("edge").unwrap().exists());
    manager.delete_saved_cache_content("root").unwrap(); // includes dependents by default
    assert!(!manager.cache_file_path("edge").unwrap().exists());
    // Deleting saved content keeps memory.
    assert_eq!((root.len(), edge.len()), (1, 1));
}

#[test]
fn rebuild_refills_every_dependent_from_its_builder() {
    let (_dir, manager) = setup(&[("root", "edge")]);
    for name in ["root", "edge"] {
        let cache = filled(&manager, name);
        cache.insert(2, 2);
        manager
            .register_builder(name, |_: &str| {
                Ok(cacheman::Contents::<u32, u32>::from([(7, 7)]))
            })
            .unwrap();
    }
    manager.invalidate_and_rebuild_cache("root").unwrap();
    for name in ["root", "edge"] {
        let cache = manager.registered_cache::<u32, u32>(name).unwrap();
        assert_eq!(cache.keys(), vec![7], "{name}");
    }
}

#[test]
fn unknown_names_are_errors() {
    let (_dir, manager) = setup(&[]);
    let err = manager.invalidate_cache("ghost").unwrap_err();
    assert!(matches!(err, Error::CacheNotFound { .. }), "{err}");
    assert!(manager.save_cache_contents("ghost").is_err());
    assert!(manager.reload_cache("ghost").is_err());
    assert!(manager.deregister_cache("ghost").is_err());
}

#[test]
fn save_with_dependents_saves_them_all() {
    let (_dir, manager) = setup(&[("root", "edge")]);
    let root = manager.register_cache::<u32, u32>("root").unwrap();
    let edge = manager.register_cache::<u32, u32>("edge").unwrap();
    root.insert(1, 1);
    edge.insert(1, 5);
    manager.save_cache_contents_and_dependents("root").unwrap();
    assert_eq!((root.pending_changes(), edge.pending_changes()), (0, 0));
}
