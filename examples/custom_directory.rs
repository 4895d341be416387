//! Caches of a manager live in `<base dir>/<manager name>/<cache>.cache`.

use cacheman::CacheManager;

fn main() -> Result<(), cacheman::Error> {
    let base = std::env::temp_dir().join(format!("cacheman-dir-demo-{}", std::process::id()));
    let manager = CacheManager::new("general_cache", base.join("secret/cache/location"));
    let cache = manager.register_cache::<String, String>("my_cache")?;
    cache.insert("new".into(), "real".into());
    cache.save()?;
    println!(
        "saved to {}",
        manager.cache_file_path("my_cache")?.display()
    );
    std::fs::remove_dir_all(&base).ok();
    Ok(())
}
