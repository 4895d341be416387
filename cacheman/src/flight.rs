//! Single-flight: when many callers miss one key at once, the first computes and the others wait
//! for its value, instead of all of them running the same expensive closure.
//!
//! Each key being computed has a [`Flight`] in a small sharded map. The leader holds a
//! [`Leader`] guard; dropping it without a value (the closure panicked, or an async leader was
//! cancelled) marks the flight abandoned, and waiters go back and try again.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::{self, ThreadId};

use crate::shards::Hasher;

enum State<V> {
    Running { wakers: Vec<Waker> },
    Done(V),
    Abandoned,
}

/// One key being computed.
pub(crate) struct Flight<V> {
    state: Mutex<State<V>>,
    finished: Condvar,
    /// The thread of a synchronous leader, to catch a closure asking for its own key.
    owner: Option<ThreadId>,
}

#[repr(align(128))]
struct Padded<T>(T);

type Slot<K, V> = Mutex<HashMap<K, Arc<Flight<V>>, Hasher>>;

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
        if let Some(flight) = slot.get(key) {
            if sync_caller
                && flight.owner == Some(thread::current().id())
                && matches!(*lock(&flight.state), State::Running { .. })
            {
                return Err(Reentrant);
            }
            return Ok(Join::Follower(Arc::clone(flight)));
        }
        if let Some(value) = recheck() {
            return Ok(Join::Ready(value));
        }
        let flight = Arc::new(Flight {
            state: Mutex::new(State::Running { wakers: Vec::new() }),
            finished: Condvar::new(),
            owner: sync_caller.then(|| thread::current().id()),
        });
        slot.insert(key.clone(), Arc::clone(&flight));
        Ok(Join::Leader(Leader {
            flights: self,
            index,
            key: key.clone(),
            flight,
            completed: false,
        }))
    }

    fn leave(&self, index: usize, key: &K) {
        lock(&self.slots[index].0).remove(key);
    }
}

/// The caller computing a key. Dropping it without [`complete`](Leader::complete) abandons the
/// flight so that waiters retry instead of waiting forever.
pub(crate) struct Leader<'a, K: Hash + Eq + Clone, V: Clone> {
    flights: &'a Flights<K, V>,
    index: usize,
    key: K,
    flight: Arc<Flight<V>>,
    completed: bool,
}

impl<K: Hash + Eq + Clone, V: Clone> Leader<'_, K, V> {
    /// Hands `value` to the waiters. Call after the value is in the cache.
    pub(crate) fn complete(mut self, value: &V) {
        self.finish(State::Done(value.clone()));
        self.completed = true;
    }

    fn finish(&self, end: State<V>) {
        let previous = std::mem::replace(&mut *lock(&self.flight.state), end);
        self.flight.finished.notify_all();
        if let State::Running { wakers } = previous {
            wakers.into_iter().for_each(Waker::wake);
        }
        self.flights.leave(self.index, &self.key);
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Drop for Leader<'_, K, V> {
    fn drop(&mut self) {
        if !self.completed {
            self.finish(State::Abandoned);
        }
    }
}

impl<V: Clone> Flight<V> {
    /// Blocks until the leader finishes: `Some(value)`, or `None` if it gave up.
    pub(crate) fn wait(&self) -> Option<V> {
        let mut state = lock(&self.state);
        loop {
            match &*state {
                State::Running { .. } => {
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
            State::Running { wakers } => {
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
