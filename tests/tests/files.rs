//! Files are never trusted: damaged, truncated or foreign files give clear errors, never panics,
//! and are left alone until a save replaces them.

use std::fs;

use cacheman::{CacheManager, Error};

fn saved(dir: &std::path::Path) -> (CacheManager, std::path::PathBuf) {
    let manager = CacheManager::new("files", dir);
    let cache = manager.register_cache::<String, u64>("c").unwrap();
    cache.extend((0..50).map(|n| (format!("key{n}"), n)));
    cache.save().unwrap();
    let path = manager.cache_file_path("c").unwrap();
    (manager, path)
}

/// Registers the cache in a fresh manager over `dir`, expecting an empty cache, then reloads
/// it expecting an error, and checks the file was not touched.
fn expect_rejected(dir: &std::path::Path, path: &std::path::Path, what: &str) -> Error {
    let before = fs::read(path).unwrap();
    let manager = CacheManager::new("files", dir);
    let cache = manager.register_cache::<String, u64>("c").unwrap();
    assert!(cache.is_empty(), "{what}: a bad file was loaded");
    let err = cache.reload().expect_err(what);
    assert_eq!(
        fs::read(path).unwrap(),
        before,
        "{what}: the bad file was modified"
    );
    err
}

#[test]
fn truncations_at_every_length_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = saved(dir.path());
    let whole = fs::read(&path).unwrap();
    for len in (0..whole.len()).step_by(7) {
        fs::write(&path, &whole[..len]).unwrap();
        let err = expect_rejected(dir.path(), &path, &format!("truncated to {len}"));
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn bit_flips_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = saved(dir.path());
    let whole = fs::read(&path).unwrap();
    for at in (0..whole.len()).step_by(5) {
        let mut bad = whole.clone();
        bad[at] ^= 0x10;
        fs::write(&path, &bad).unwrap();
        expect_rejected(dir.path(), &path, &format!("flip at {at}"));
    }
}

#[test]
fn appended_bytes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = saved(dir.path());
    let mut longer = fs::read(&path).unwrap();
    longer.extend_from_slice(b"trailing garbage");
    fs::write(&path, &longer).unwrap();
    let err = expect_rejected(dir.path(), &path, "extended");
    assert!(err.to_string().contains("payload"), "{err}");
}

#[test]
fn a_foreign_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = saved(dir.path());
    fs::write(&path, b"\x80\x04\x95pickle data from CacheMan").unwrap();
    let err = expect_rejected(dir.path(), &path, "pickle");
    assert!(err.to_string().contains("magic"), "{err}");
}

#[test]
fn a_file_of_other_types_is_incompatible_and_replaced_by_the_next_save() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = saved(dir.path());
    let manager = CacheManager::new("files", dir.path());
    let other = manager.register_cache::<String, String>("c").unwrap();
    assert!(other.is_empty());
    let err = other.reload().unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    assert!(
        err.to_string().contains("other key or value types"),
        "{err}"
    );
    other.insert("k".into(), "v".into());
    other.save().unwrap();
    other.reload().unwrap();
    assert_eq!(other.len(), 1);
    assert!(path.exists());
}

#[test]
fn a_huge_length_field_is_rejected_before_any_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = saved(dir.path());
    let mut bad = fs::read(&path).unwrap();
    // Payload length lives at bytes 44..52; the header CRC then fails first, which is the point:
    // nothing the header claims is believed before it is checked.
    bad[44..52].copy_from_slice(&u64::MAX.to_le_bytes());
    fs::write(&path, &bad).unwrap();
    expect_rejected(dir.path(), &path, "huge length");
}

#[test]
fn names_that_would_escape_the_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("files", dir.path());
    for bad in [
        "",
        "..",
        "../up",
        "a/b",
        "a\\b",
        ".hidden",
        "nul\0byte",
        "a:b",
        "a b",
        "CON",
    ] {
        let err = manager.register_cache::<u8, u8>(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}: {err}");
        assert!(
            manager.register_dependent_cache(bad, "x").is_err(),
            "{bad:?}"
        );
    }
    let bad_manager = CacheManager::new("../escape", dir.path());
    let err = bad_manager.register_cache::<u8, u8>("c").unwrap_err();
    assert!(err.to_string().contains("invalid manager name"), "{err}");
}

#[test]
fn type_mismatch_names_both_types() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("files", dir.path());
    manager.register_cache::<String, u64>("c").unwrap();
    let err = manager.retrieve_cache::<u32, u64>("c").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::TypeMismatch { .. }));
    assert!(
        text.contains("alloc::string::String") && text.contains("u32"),
        "{text}"
    );
}

#[test]
fn a_failed_write_is_a_clear_error_and_keeps_the_changes_pending() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, path) = saved(dir.path());
    let cache = manager.registered_cache::<String, u64>("c").unwrap();
    cache.insert("new".into(), 1);
    // A directory where the file should be makes the final rename fail, even for root (which
    // ignores permission bits).
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    let err = cache.save().unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("write the cache file"), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(cache.pending_changes(), 1);
    assert_eq!(cache.len(), 51);
    // No temporary file is left behind: the directory holds the cache path and the lock file
    // (and the manifest the first save wrote).
    let mut names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with(".manifest."))
        .collect();
    names.sort();
    assert_eq!(names, vec!["c.cache", "c.lock"]);

    fs::remove_dir(&path).unwrap();
    cache.save().unwrap();
    assert_eq!(cache.pending_changes(), 0);
    cache.reload().unwrap();
    assert_eq!(cache.len(), 51);
}
