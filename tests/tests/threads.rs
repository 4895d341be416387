//! Many threads on one cache: one computation per missed key, no blocking across keys, no
//! deadlock on re-entrance, no lost inserts.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use cacheman::{Cache, CacheManager};

fn cache<V>(dir: &tempfile::TempDir) -> Cache<u64, V>
where
    V: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    CacheManager::new("threads", dir.path())
        .register_cache::<u64, V>("c")
        .unwrap()
}

/// Waits (yielding, not sleeping) until `cache` has counted `misses` misses: every caller has
/// looked and is now at, or past, the in-flight slot.
fn until_misses<V: Clone + Send + Sync + 'static>(cache: &Cache<u64, V>, misses: u64) {
    while cache.stats().misses < misses {
        thread::yield_now();
    }
}

#[test]
fn a_herd_missing_one_key_runs_the_computation_once() {
    const THREADS: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let cache = cache::<u64>(&dir);
    let runs = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (cache, runs, start) = (cache.clone(), Arc::clone(&runs), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                cache.get_or_insert_with(7, || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    until_misses(&cache, THREADS as u64);
                    49
                })
            })
        })
        .collect();
    let values: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(values, vec![49; THREADS]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().inserts, 1);
}

#[test]
fn a_slow_key_does_not_block_other_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache::<u64>(&dir);
    let (release, released) = mpsc::channel::<()>();
    let slow = {
        let cache = cache.clone();
        thread::spawn(move || {
            cache.get_or_insert_with(1, || {
                released
                    .recv_timeout(Duration::from_secs(30))
                    .expect("the other key was blocked behind this one");
                1
            })
        })
    };
    until_misses(&cache, 1);
    // Every other key, whatever shard it lands in, completes while key 1 is still computing.
    for key in 2..200 {
        assert_eq!(cache.get_or_insert_with(key, || key * 10), key * 10);
    }
    release.send(()).unwrap();
    assert_eq!(slow.join().unwrap(), 1);
}

#[test]
fn a_reentrant_call_for_the_same_key_panics_instead_of_deadlocking() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache::<u64>(&dir);
    let inner = cache.clone();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        cache.get_or_insert_with(5, || inner.get_or_insert_with(5, || 1))
    }));
    let message = *outcome.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.contains("re-entrant computation of one key in cache `c`"),
        "{message}"
    );
    // The abandoned flight does not wedge the key.
    assert_eq!(cache.get_or_insert_with(5, || 2), 2);
}

#[test]
fn recursion_over_other_keys_works() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache::<u64>(&dir);
    fn fib(cache: &Cache<u64, u64>, n: u64) -> u64 {
        cache.get_or_insert_with(n, || {
            if n < 2 {
                n
            } else {
                fib(cache, n - 1) + fib(cache, n - 2)
            }
        })
    }
    assert_eq!(fib(&cache, 90), 2_880_067_194_370_816_120);
    assert_eq!(cache.stats().inserts, 91);
}

#[test]
fn when_the_leader_panics_a_waiter_computes_instead() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache::<u64>(&dir);
    let leader = {
        let cache = cache.clone();
        thread::spawn(move || {
            cache.get_or_insert_with(3, || {
                until_misses(&cache, 2);
                panic!("leader failed")
            })
        })
    };
    until_misses(&cache, 1);
    let value = cache.get_or_insert_with(3, || 9);
    assert!(leader.join().is_err());
    assert_eq!(value, 9);
    assert_eq!(cache.get(&3), Some(9));
}

#[test]
fn an_error_is_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache::<u64>(&dir);
    assert_eq!(cache.get_or_try_insert_with(1, || Err("no")), Err("no"));
    assert!(!cache.contains_key(&1));
    assert_eq!(cache.get_or_try_insert_with(1, || Ok::<_, &str>(1)), Ok(1));
}

#[test]
fn a_value_computed_across_an_invalidation_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache::<u64>(&dir);
    let value = cache.get_or_insert_with(1, || {
        cache.invalidate().unwrap();
        10
    });
    assert_eq!(value, 10);
    assert!(!cache.contains_key(&1));
}

#[test]
fn parallel_writers_lose_nothing() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let cache = cache::<u64>(&dir);
    thread::scope(|s| {
        for t in 0..THREADS {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let key = t * PER_THREAD + i;
                    cache.insert(key, key);
                    assert_eq!(cache.get(&key), Some(key));
                }
            });
        }
    });
    assert_eq!(cache.len() as u64, THREADS * PER_THREAD);
    let stats = cache.stats();
    assert_eq!(
        (stats.inserts, stats.hits),
        (THREADS * PER_THREAD, THREADS * PER_THREAD)
    );
    cache.save().unwrap();
    cache.reload().unwrap();
    assert_eq!(cache.len() as u64, THREADS * PER_THREAD);
}

struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// The smallest executor: polls on this thread, parks between wake-ups.
#[test]
fn saves_while_other_threads_write_keep_every_untouched_entry() {
    // A save copies each shard a few buckets per lock hold while writers insert and remove
    // other keys in between (growing and rehashing the tables now and then): every entry
    // nobody touched must be in every file. The case of a table that grows mid-copy is forced
    // deterministically by the unit tests of `shards`; here it happens only by chance.
    const STABLE: u64 = 20_000;
    const SAVES: usize = 15;
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("threads", dir.path());
    manager.set_autosync(cacheman::AutoSync::disabled());
    let cache = manager.register_cache::<u64, u64>("grow").unwrap();
    cache.extend((0..STABLE).map(|k| (k, k * 3)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (cache, stop) = (cache.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                // Keys of their own, far above the stable ones: inserted in waves that grow
                // the tables, then removed, so growth and rehashing go on all along.
                let base = (t + 1) << 40;
                let mut wave = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let keys = base + wave * 50_000..base + wave * 50_000 + 50_000;
                    cache.extend(keys.clone().map(|k| (k, k)));
                    for k in keys {
                        cache.remove(&k);
                    }
                    wave += 1;
                }
            })
        })
        .collect();
    for save in 0..SAVES {
        cache.save().unwrap();
        let reader = CacheManager::new("threads", dir.path());
        reader.set_autosync(cacheman::AutoSync::disabled());
        let seen = reader.register_cache::<u64, u64>("grow").unwrap();
        let missing: Vec<u64> = (0..STABLE)
            .filter(|k| seen.get(k) != Some(k * 3))
            .take(5)
            .collect();
        assert!(
            missing.is_empty(),
            "save {save} lost stable keys {missing:?}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        thread::park();
    }
}

#[test]
fn async_callers_of_one_key_await_one_computation() {
    const TASKS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let cache = cache::<String>(&dir);
    let runs = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            let (cache, runs) = (cache.clone(), Arc::clone(&runs));
            thread::spawn(move || {
                block_on(cache.get_or_insert_with_async(1, || {
                    let cache = cache.clone();
                    let runs = Arc::clone(&runs);
                    async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        until_misses(&cache, TASKS as u64);
                        "computed".to_string()
                    }
                }))
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), "computed");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
