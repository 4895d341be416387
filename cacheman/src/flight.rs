//! Single-flight: when many callers miss one key at once, the first computes and the others wait
//! for its value, instead of all of them running the same expensive closure.
//!
//! A key being computed has an [`InFlight`] entry beside the entries of its shard (see
//! `shards/mod.rs`), made and removed under the shard's write lock together with the checks and
//! the insert that go with them, so a miss takes no lock of its own. The [`Flight`] that waiters
//! block on is allocated by the first waiter: most misses have none, and cost no allocation.
//! A leader that gives up (its closure panicked, or an async leader was cancelled) marks the
//! flight abandoned, and waiters go back and try again.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

enum State<V> {
    /// `sleepers`: threads blocked in [`Flight::wait`]; the condvar is signalled only if any,
    /// since signalling costs a system call even with nobody waiting.
    Running {
        wakers: Vec<Waker>,
        sleepers: usize,
    },
    Done(V),
    Abandoned,
}

/// What waiters of one key block on.
pub(crate) struct Flight<V> {
    state: Mutex<State<V>>,
    finished: Condvar,
}

/// A key being computed.
pub(crate) struct InFlight<V> {
    /// The thread of a synchronous leader, to catch a closure asking for its own key.
    owner: Option<ThreadMark>,
    /// Made by the first waiter.
    flight: Option<Arc<Flight<V>>>,
}

/// Names a live thread cheaply: the address of a thread-local (`thread::current()` would cost
/// two atomic operations on a shared count). A leader's thread outlives its flight, so the
/// address cannot be reused by another thread while the flight exists.
#[derive(Clone, Copy, PartialEq, Eq)]
struct ThreadMark(usize);

impl ThreadMark {
    fn current() -> Self {
        thread_local!(static MARK: u8 = const { 0 });
        ThreadMark(MARK.with(|mark| mark as *const u8 as usize))
    }
}

/// How a miss goes on, decided under the shard's write lock.
pub(crate) enum Begin<V> {
    /// The value appeared while we were getting here.
    Ready(V),
    /// Nobody computes this key: the caller does, and must finish the flight.
    Lead,
    /// Somebody else computes it: wait on the flight.
    Follow(Arc<Flight<V>>),
}

/// The synchronous caller asked for a key it is computing itself.
#[derive(Debug)]
pub(crate) struct Reentrant;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a few map or enum operations that cannot leave the data
    // half-changed, so a poisoned lock is still consistent.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<V> InFlight<V> {
    pub(crate) fn new(sync_caller: bool) -> Self {
        InFlight {
            owner: sync_caller.then(ThreadMark::current),
            flight: None,
        }
    }

    /// The flight for a caller that found this key being computed. The entry is removed before
    /// its leader's closure returns, so an entry owned by this thread means the closure asks for
    /// its own key (checked for synchronous callers only: async tasks move between threads).
    pub(crate) fn follow(&mut self, sync_caller: bool) -> Result<Arc<Flight<V>>, Reentrant> {
        if sync_caller && self.owner == Some(ThreadMark::current()) {
            return Err(Reentrant);
        }
        let flight = self.flight.get_or_insert_with(|| {
            Arc::new(Flight {
                state: Mutex::new(State::Running {
                    wakers: Vec::new(),
                    sleepers: 0,
                }),
                finished: Condvar::new(),
            })
        });
        Ok(Arc::clone(flight))
    }

    /// Tells the waiters, if any, how the flight ended: `Some(value)` or abandoned. Called after
    /// the entry left its shard (so no waiter can appear any more), outside the shard's lock.
    pub(crate) fn land(self, value: Option<&V>)
    where
        V: Clone,
    {
        let Some(flight) = self.flight else {
            return;
        };
        let end = match value {
            Some(value) => State::Done(value.clone()),
            None => State::Abandoned,
        };
        let previous = std::mem::replace(&mut *lock(&flight.state), end);
        if let State::Running { wakers, sleepers } = previous {
            if sleepers > 0 {
                flight.finished.notify_all();
            }
            wakers.into_iter().for_each(Waker::wake);
        }
    }
}

impl<V: Clone> Flight<V> {
    /// Blocks until the leader finishes: `Some(value)`, or `None` if it gave up.
    pub(crate) fn wait(&self) -> Option<V> {
        let mut state = lock(&self.state);
        let mut counted = false;
        loop {
            match &mut *state {
                State::Running { sleepers, .. } => {
                    if !counted {
                        *sleepers += 1;
                        counted = true;
                    }
                    state = self.finished.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                State::Done(value) => return Some(value.clone()),
                State::Abandoned => return None,
            }
        }
    }

    /// Waits without blocking the thread: the leader's completion wakes the task.
    pub(crate) fn wait_async(self: Arc<Self>) -> WaitFlight<V> {
        WaitFlight { flight: self }
    }
}

/// Future returned by [`Flight::wait_async`].
pub(crate) struct WaitFlight<V> {
    flight: Arc<Flight<V>>,
}

impl<V: Clone> Future for WaitFlight<V> {
    type Output = Option<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = lock(&self.flight.state);
        match &mut *state {
            State::Running { wakers, .. } => {
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
            State::Done(value) => Poll::Ready(Some(value.clone())),
            State::Abandoned => Poll::Ready(None),
        }
    }
}
