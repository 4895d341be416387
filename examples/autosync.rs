//! Run it twice: the first run counts words and returns from `main` without calling `save()`;
//! the exit flush saves them, so the second run starts where the first stopped.
//!
//! ```text
//! cargo run --example autosync
//! cargo run --example autosync   # the counts go on
//! ```

use std::time::Duration;

use cacheman::{AutoSync, CacheOptions, get_cache_manager};

fn main() -> Result<(), cacheman::Error> {
    env_logger::init();
    // Save a minute after 100 changes, or 15 minutes after any: a busier cache than the
    // defaults assume. The exit flush saves whatever is still pending.
    let points = AutoSync::disabled()
        .save_point(Duration::from_secs(60), 100)
        .save_point(Duration::from_secs(900), 1);
    let words = get_cache_manager().register_custom_cache::<String, u64>(
        "word_counts",
        CacheOptions::new().autosync(points),
    )?;

    for word in "the quick brown fox jumps over the lazy dog".split(' ') {
        let seen = words.get(&word.to_owned()).unwrap_or(0);
        words.insert(word.to_owned(), seen + 1);
    }
    println!(
        "`the` seen {} times; {} changes not saved yet: the exit flush saves them",
        words.get(&"the".to_owned()).unwrap_or(0),
        words.pending_changes()
    );
    Ok(())
}
