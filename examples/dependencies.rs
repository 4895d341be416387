//! CacheMan's "Dependent caches" story with `#[cached]`: `processed` is declared to depend on
//! `raw`, so invalidating `raw`'s cache clears `processed`'s too, in memory and on disk, even
//! in a run that never called `processed`.
//!
//! ```text
//! cargo run --example dependencies
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use cacheman::{CacheManager, cached};

/// Stands for data read from somewhere that can change under us.
static SOURCE: AtomicU64 = AtomicU64::new(1);

/// The raw value (cache "root").
#[cached(name = "root")]
fn raw(id: u32) -> u64 {
    SOURCE.load(Ordering::SeqCst) * u64::from(id)
}

/// A value derived from `raw` (cache "edge"): `depends_on = raw` is checked by the compiler.
#[cached(name = "edge", depends_on = raw)]
fn processed(id: u32) -> u64 {
    raw(id) * 5
}

fn main() -> Result<(), cacheman::Error> {
    env_logger::init();
    // A demo directory of its own, installed before the first call.
    let dir = std::env::temp_dir().join(format!("cacheman-deps-demo-{}", std::process::id()));
    let manager = CacheManager::new(cacheman::DEFAULT_MANAGER, &dir);
    cacheman::set_cache_manager(manager.clone())?;
    manager.check_declarations()?;
    println!(
        "`root` is depended on by {:?}",
        manager.dependents_of("root")
    );

    println!("processed(1) = {}", processed(1)); // 5
    SOURCE.store(2, Ordering::SeqCst);
    println!("processed(1) = {} (still cached)", processed(1)); // 5

    manager.invalidate_cache("root")?; // clears "edge" too
    println!("edge after invalidating root: {:?}", processed_cache());
    println!("processed(1) = {}", processed(1)); // 10

    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
