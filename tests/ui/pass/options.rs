//! Every argument of the attribute at once, and `key` forms.
#![deny(warnings)]

use cacheman::cached;

#[cached(
    name = "tuned",
    manager = "pass_options",
    persistent = false,
    capacity = 100u16,
    ttl_secs = 3600,
    refresh = true,
    version = 2
)]
fn tuned(n: u64) -> u64 {
    n + 1
}

#[cached(manager = "pass_options", depends_on = ["tuned"], key = id)]
fn by_id(id: u32, _verbose: bool) -> u32 {
    id
}

#[cached(manager = "pass_options", key = (b, a))]
fn swapped(a: &str, b: u8) -> String {
    format!("{a}{b}")
}

#[cached(manager = "pass_options", key = format!("{a}/{b}"), key_type = String)]
fn joined(a: u32, b: u32) -> u32 {
    a + b
}

fn main() {
    // A temporary directory, without the exit flush that would run after it is removed.
    let dir = tempfile::tempdir().unwrap();
    let manager = cacheman::CacheManager::new("pass_options", dir.path());
    manager.set_autosync(cacheman::AutoSync::disabled());
    cacheman::set_cache_manager(manager).unwrap();
    assert_eq!(tuned(1), 2);
    assert_eq!(tuned_cache().name(), "tuned");
    assert_eq!(by_id(3, true), 3);
    assert_eq!(by_id_cache().keys(), vec![3]);
    assert_eq!(swapped("x", 1), "x1");
    assert_eq!(swapped_cache().keys(), vec![(1, "x".to_owned())]);
    assert_eq!(joined(1, 2), 3);
    assert_eq!(joined_cache().keys(), vec!["1/2".to_owned()]);
    cacheman::get_cache_manager_named("pass_options").check_declarations().unwrap();
}
