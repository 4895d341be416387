//! Blocking calls of async callers, handed to a small pool of threads so that a task waiting
//! for a round trip to a shared store does not hold its executor's thread meanwhile. Runtime
//! free: the pool's thread wakes the task with the waker of its latest poll, as
//! `cache_shared::Delay` does. Threads are started as calls need them (up to
//! [`MAX_THREADS`]; calls beyond wait in a queue) and end after [`IDLE`] without work.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Threads at most: calls to a store are round trips, so a few threads serve many tasks.
const MAX_THREADS: usize = 16;
/// How long a thread waits for work before it ends.
const IDLE: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send>;

/// What gets the value of a call whose future was dropped before it was ready.
pub(crate) type Cleanup<T> = Arc<dyn Fn(T) + Send + Sync>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

struct Pool {
    queue: Mutex<Queue>,
    work: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change under these locks is one step: a poisoned one is still whole.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn pool() -> &'static Pool {
    static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| Pool {
        queue: Mutex::new(Queue::default()),
        work: Condvar::new(),
    })
}

/// Runs `job` on a thread of the pool; `Err(job)` if no thread can run it.
fn submit(job: Job) -> Result<(), Job> {
    let pool = pool();
    let mut queue = lock(&pool.queue);
    if queue.idle == 0 && queue.threads < MAX_THREADS {
        let spawned = std::thread::Builder::new()
            .name("cacheman-offload".into())
            .spawn(work);
        match spawned {
            Ok(_) => queue.threads += 1,
            Err(err) if queue.threads == 0 => {
                log::debug!("cacheman: no thread for a store call ({err}); run in place");
                return Err(job);
            }
            Err(_) => {} // the threads there take it in turn
        }
    }
    queue.jobs.push_back(job);
    drop(queue);
    pool.work.notify_one();
    Ok(())
}

/// A pool thread: runs jobs until none came for [`IDLE`].
fn work() {
    let pool = pool();
    loop {
        let mut queue = lock(&pool.queue);
        let job = loop {
            if let Some(job) = queue.jobs.pop_front() {
                break job;
            }
            queue.idle += 1;
            let (guard, waited) = pool
                .work
                .wait_timeout(queue, IDLE)
                .unwrap_or_else(|e| e.into_inner());
            queue = guard;
            queue.idle -= 1;
            if waited.timed_out() && queue.jobs.is_empty() {
                queue.threads -= 1;
                return;
            }
        };
        drop(queue);
        job(); // each job catches its own panics (see `offload`)
    }
}

/// What a call left for its future.
struct Slot<T> {
    outcome: Option<std::thread::Result<T>>,
    waker: Option<Waker>,
    /// The future was dropped before taking the outcome: the job's thread hands it to the
    /// clean-up instead.
    abandoned: bool,
}

/// The future of an offloaded call: its value, or its panic resumed in the task.
pub(crate) struct Offloaded<T> {
    slot: Arc<Mutex<Slot<T>>>,
    cleanup: Option<Cleanup<T>>,
}

/// Runs `call` on the pool; the future is its value. If the future is dropped before it is
/// ready (the task was cancelled), `cleanup` gets the value when the call ends, on the
/// pool's thread (a lease taken for a task that is gone is let go there).
pub(crate) fn offload<T: Send + 'static>(
    call: impl FnOnce() -> T + Send + 'static,
    cleanup: Option<Cleanup<T>>,
) -> Offloaded<T> {
    let slot = Arc::new(Mutex::new(Slot {
        outcome: None,
        waker: None,
        abandoned: false,
    }));
    let (filled, on_abandoned) = (slot.clone(), cleanup.clone());
    let job: Job = Box::new(move || {
        let outcome = catch_unwind(AssertUnwindSafe(call));
        let mut slot = lock(&filled);
        if slot.abandoned {
            drop(slot);
            if let (Ok(value), Some(cleanup)) = (outcome, on_abandoned) {
                cleanup(value);
            }
            return;
        }
        slot.outcome = Some(outcome);
        let waker = slot.waker.take();
        drop(slot);
        if let Some(waker) = waker {
            waker.wake();
        }
    });
    if let Err(job) = submit(job) {
        job(); // no thread to be had: the call blocks this one, as a sync caller's does
    }
    Offloaded { slot, cleanup }
}

impl<T> Future for Offloaded<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = lock(&self.slot);
        match slot.outcome.take() {
            Some(Ok(value)) => Poll::Ready(value),
            Some(Err(panic)) => {
                drop(slot);
                resume_unwind(panic)
            }
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Offloaded<T> {
    fn drop(&mut self) {
        let mut slot = lock(&self.slot);
        match slot.outcome.take() {
            // Ready but never taken: clean up here.
            Some(Ok(value)) => {
                drop(slot);
                if let Some(cleanup) = self.cleanup.take() {
                    cleanup(value);
                }
            }
            Some(Err(_)) => {}
            None => slot.abandoned = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    fn block_on<F: Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return value;
            }
            std::thread::park();
        }
    }

    #[test]
    fn a_call_runs_on_another_thread_and_its_value_wakes_the_task() {
        let here = std::thread::current().id();
        let (go, wait) = mpsc::channel::<()>();
        let mut call = offload(
            move || {
                wait.recv().unwrap(); // held until the test has polled once
                std::thread::current().id()
            },
            None,
        );
        let waker = Waker::noop();
        let polled = Pin::new(&mut call).poll(&mut Context::from_waker(waker));
        assert!(polled.is_pending(), "the call ran on the polling thread");
        go.send(()).unwrap();
        assert_ne!(block_on(call), here);
    }

    #[test]
    fn a_dropped_call_hands_its_value_to_the_cleanup() {
        let cleaned = Arc::new(AtomicUsize::new(0));
        let counted = cleaned.clone();
        let (go, wait) = mpsc::channel::<()>();
        let (done, ended) = mpsc::channel::<()>();
        let call = offload(
            move || {
                wait.recv().unwrap();
                7usize
            },
            Some(Arc::new(move |value: usize| {
                counted.fetch_add(value, Ordering::SeqCst);
                done.send(()).unwrap();
            })),
        );
        drop(call);
        go.send(()).unwrap();
        ended.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(cleaned.load(Ordering::SeqCst), 7);
    }

    #[test]
    fn a_panicking_call_panics_in_the_task() {
        let call = offload(|| -> u8 { panic!("in the call") }, None);
        let caught = catch_unwind(AssertUnwindSafe(|| block_on(call)));
        assert!(caught.is_err());
    }
}
