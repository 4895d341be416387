//! A process that leaves without saving, for the autosync and exit-flush tests. Its caches
//! live in `$CACHEMAN_DIR`.
//!
//! ```text
//! autosync_child insert <n>   # inserts 0..n into the global manager's `numbers`, returns from main
//! autosync_child exit <n>     # the same, then std::process::exit(0)
//! autosync_child panic <n>    # the same, then panics out of main
//! autosync_child guard <n>    # a local manager whose cache outlives a flush_on_drop guard, then panics
//! autosync_child ticker <n>   # saves every change at once; waits for the background thread to
//!                             # save, then aborts (no exit handlers)
//! autosync_child linger <n>   # an autosyncing cache and a busy ticker thread, then returns
//! autosync_child wait <n>     # inserts, prints `ready`, then waits to be killed by a signal
//! autosync_child count <name> # prints the number of entries of `<name>`
//! ```

use std::time::Duration;

use cacheman::{AutoSync, Cache, CacheManager, CacheOptions, get_cache_manager};

fn numbers(manager: &CacheManager, options: CacheOptions) -> Cache<u64, u64> {
    manager
        .register_custom_cache::<u64, u64>("numbers", options)
        .expect("register `numbers`")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, arg] = args.as_slice() else {
        eprintln!("usage: autosync_child MODE N");
        std::process::exit(2);
    };
    let n: u64 = arg.parse().unwrap_or(0);
    match mode.as_str() {
        "insert" => {
            numbers(&get_cache_manager(), CacheOptions::new()).extend((0..n).map(|i| (i, i)));
        }
        "exit" => {
            numbers(&get_cache_manager(), CacheOptions::new()).extend((0..n).map(|i| (i, i)));
            std::process::exit(0);
        }
        "panic" => {
            numbers(&get_cache_manager(), CacheOptions::new()).extend((0..n).map(|i| (i, i)));
            panic!("leaving main by a panic");
        }
        "guard" => {
            // Not a global manager: its cache is gone by the time exit handlers run, so only
            // the guard (dropped first, while the cache lives) can save it.
            let manager = CacheManager::new("general_cache", cacheman::default_base_dir());
            let cache = numbers(&manager, CacheOptions::new());
            let _guard = cacheman::flush_on_drop();
            cache.extend((0..n).map(|i| (i, i)));
            panic!("leaving main by a panic");
        }
        "ticker" => {
            cacheman::autosync::set_tick_interval(Duration::from_millis(10));
            let at_once = AutoSync::disabled().save_point(Duration::ZERO, 1);
            let cache = numbers(&get_cache_manager(), CacheOptions::new().autosync(at_once));
            cache.extend((0..n).map(|i| (i, i)));
            // Waits on the background thread, not on time; gives up after a minute.
            for _ in 0..6_000 {
                if cache.pending_changes() == 0 {
                    std::process::abort();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            eprintln!("the background thread never saved");
            std::process::exit(1);
        }
        "linger" => {
            cacheman::autosync::set_tick_interval(Duration::from_millis(10));
            let cache = numbers(&get_cache_manager(), CacheOptions::new());
            cache.extend((0..n).map(|i| (i, i)));
            // A new thread names itself once it runs: wait for that (for at most a minute).
            let mut running = ticker_thread_running();
            for _ in 0..6_000 {
                if running {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
                running = ticker_thread_running();
            }
            if !running {
                eprintln!("no cacheman-autosync thread is running");
                std::process::exit(1);
            }
        }
        "wait" => {
            let cache = numbers(&get_cache_manager(), CacheOptions::new());
            cache.extend((0..n).map(|i| (i, i)));
            println!("ready");
            loop {
                std::thread::park();
            }
        }
        "count" => {
            let cache = get_cache_manager()
                .register_cache::<u64, u64>(arg)
                .expect("register");
            cache.reload().expect("reload");
            println!("{}", cache.len());
        }
        _ => {
            eprintln!("unknown mode {mode}");
            std::process::exit(2);
        }
    }
}

/// Whether this process has a thread named `cacheman-autosync` (Linux only; elsewhere `true`).
fn ticker_thread_running() -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("comm"))
            // Linux keeps the first 15 bytes of a thread's name.
            .is_ok_and(|name| name.trim() == "cacheman-autosy")
    })
}
