//! A cache that lives only as long as the process: nothing is written to disk.

use cacheman::{CacheManager, CacheOptions};

fn main() -> Result<(), cacheman::Error> {
    let dir = tempfile_dir();
    let manager = CacheManager::new("general_cache", &dir);
    let cache = manager.register_custom_cache::<String, usize>(
        "my_simple_cache",
        CacheOptions::new().persistent(false),
    )?;
    cache.insert("answer".into(), 42);
    cache.save()?; // a no-op
    println!("{cache:?}");
    println!(
        "file written: {}",
        manager.cache_file_path("my_simple_cache")?.exists()
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// A fresh directory for the demo, so it never touches your real cache directory.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cacheman-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a demo directory");
    dir
}
