//! Single-flight: when many callers miss one key at once, the first computes and the others wait
//! for its value, instead of all of them running the same expensive closure.
//!
//! Each key being computed has an entry in a small sharded map. The leader holds a [`Leader`]
//! guard; dropping it without a value (the closure panicked, or an async leader was cancelled)
//! marks the flight abandoned, and waiters go back and try again. The [`Flight`] that waiters
//! block on is allocated by the first waiter: most misses have none, and cost no allocation.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::shards::Hasher;

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
struct InFlight<V> {
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

#[repr(align(128))]
struct Padded<T>(T);

type Slot<K, V> = Mutex<HashMap<K, InFlight<V>, Hasher>>;

pub(crate) struct Flights<K, V> {
    slots: Box<[Padded<Slot<K, V>>]>,
}

/// What [`Flights::join`] decided for the caller.
pub(crate) enum Join<'a, K: Hash + Eq + Clone, V: Clone> {
    /// The value appeared while we were getting here.
    Ready(V),
    /// Nobody computes this key: the caller does, and must call [`Leader::complete`].
    Leader(Leader<'a, K, V>),
    /// Somebody else computes it: wait on the flight.
    Follower(Arc<Flight<V>>),
}

/// The synchronous caller asked for a key it is computing itself.
#[derive(Debug)]
pub(crate) struct Reentrant;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a few map or enum operations that cannot leave the data
    // half-changed, so a poisoned lock is still consistent.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    pub(crate) fn new(slot_count: usize, hasher: &Hasher) -> Self {
        let slots = (0..slot_count)
            .map(|_| Padded(Mutex::new(HashMap::with_hasher(hasher.clone()))))
            .collect();
        Flights { slots }
    }

    /// Finds or starts the flight of `key` in slot `index`.
    ///
    /// `recheck` runs under the slot's lock and looks in the cache again: a leader stores its
    /// value before it leaves the slot, so a value stored after our first look is seen here and
    /// never computed twice. `sync_caller` enables the re-entrancy check (async tasks move
    /// between threads, so the thread says nothing about them).
    pub(crate) fn join(
        &self,
        index: usize,
        key: &K,
        sync_caller: bool,
        recheck: impl FnOnce() -> Option<V>,
    ) -> Result<Join<'_, K, V>, Reentrant> {
        let mut slot = lock(&self.slots[index].0);
        if let Some(in_flight) = slot.get_mut(key) {
            // The entry leaves the map before its leader's closure returns, so an entry owned
            // by this thread means the closure is asking for its own key.
            if sync_caller && in_flight.owner == Some(ThreadMark::current()) {
                return Err(Reentrant);
            }
            let flight = in_flight.flight.get_or_insert_with(|| {
                Arc::new(Flight {
                    state: Mutex::new(State::Running {
                        wakers: Vec::new(),
                        sleepers: 0,
                    }),
                    finished: Condvar::new(),
                })
            });
            return Ok(Join::Follower(Arc::clone(flight)));
        }
        if let Some(value) = recheck() {
            return Ok(Join::Ready(value));
        }
        let in_flight = InFlight {
            owner: sync_caller.then(ThreadMark::current),
            flight: None,
        };
        slot.insert(key.clone(), in_flight);
        Ok(Join::Leader(Leader {
            flights: self,
            index,
            key: key.clone(),
            completed: false,
        }))
    }

    /// Removes the key's entry; returns its flight if anybody waits on it.
    fn leave(&self, index: usize, key: &K) -> Option<Arc<Flight<V>>> {
        lock(&self.slots[index].0).remove(key)?.flight
    }
}

/// The caller computing a key. Dropping it without [`complete`](Leader::complete) abandons the
/// flight so that waiters retry instead of waiting forever.
pub(crate) struct Leader<'a, K: Hash + Eq + Clone, V: Clone> {
    flights: &'a Flights<K, V>,
    index: usize,
    key: K,
    completed: bool,
}

impl<K: Hash + Eq + Clone, V: Clone> Leader<'_, K, V> {
    /// Hands `value` to the waiters. Call after the value is in the cache.
    pub(crate) fn complete(mut self, value: &V) {
        self.finish(|| State::Done(value.clone()));
        self.completed = true;
    }

    fn finish(&self, end: impl FnOnce() -> State<V>) {
        // Leave the slot first: from now on a caller finds the value in the cache (stored before
        // `complete`), or leads a new flight if this one was abandoned. Waiters made the flight
        // under the slot's lock, so after leaving none can appear: none means nobody to tell.
        let Some(flight) = self.flights.leave(self.index, &self.key) else {
            return;
        };
        let previous = std::mem::replace(&mut *lock(&flight.state), end());
        if let State::Running { wakers, sleepers } = previous {
            if sleepers > 0 {
                flight.finished.notify_all();
            }
            wakers.into_iter().for_each(Waker::wake);
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Drop for Leader<'_, K, V> {
    fn drop(&mut self) {
        if !self.completed {
            self.finish(|| State::Abandoned);
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
