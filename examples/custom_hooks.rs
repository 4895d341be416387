//! CacheMan's "Registering hooks" example: a custom saver and loader replace the file defaults.

use cacheman::{CacheManager, Contents};

fn main() -> Result<(), cacheman::Error> {
    let manager = CacheManager::new(
        "general_cache",
        std::env::temp_dir().join("cacheman-hooks-demo"),
    );
    let cache = manager
        .cache_builder::<String, String>("my_cache")
        .saver(|name, contents| {
            let mut entries: Vec<_> = contents.iter().collect();
            entries.sort();
            println!("Save requested on {name} cache content: {entries:?}");
            Ok(())
        })
        .loader(|_name| Ok(Some(Contents::from([("load".into(), "faked".into())]))))
        .register()?;

    cache.save()?; // Save requested on my_cache cache content: [("load", "faked")]
    cache.insert("new".into(), "real".into());
    cache.save()?; // ... [("load", "faked"), ("new", "real")]
    Ok(())
}
