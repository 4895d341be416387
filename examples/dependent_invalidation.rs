//! CacheMan's "Dependent caches" example: invalidating `root_cache` clears `edge_cache`, so a
//! value derived from stale data is never served.

use cacheman::CacheManager;

fn main() -> Result<(), cacheman::Error> {
    let dir = std::env::temp_dir().join(format!("cacheman-deps-demo-{}", std::process::id()));
    let manager = CacheManager::new("general_cache", &dir);
    let edge_cache = manager.retrieve_cache::<String, u64>("edge_cache")?;
    let root_cache = manager.register_cache::<String, u64>("root_cache")?;
    manager.register_dependent_cache("root_cache", "edge_cache")?;

    let set_processed_value = || {
        edge_cache.get_or_insert_with("processed".into(), || {
            root_cache.get("raw").unwrap_or(0) * 5
        })
    };

    println!("{}", set_processed_value()); // 0 without raw value
    root_cache.insert("raw".into(), 1);
    println!("{}", set_processed_value()); // still 0: it is cached in edge

    root_cache.invalidate()?; // invalidates the dependent caches too
    println!("{edge_cache:?}"); // {} even though only root_cache was invalidated
    root_cache.insert("raw".into(), 1);
    println!("{}", set_processed_value()); // now 5
    println!("{edge_cache:?}"); // {"processed": 5}

    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
