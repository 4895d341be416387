//! The async forms of the shared store's paths (`cache_shared.rs`): each round trip is handed
//! to the offload pool (`offload.rs`), so that a task waiting on the store does not hold its
//! executor's thread; what touches the cache's maps, its graph and the task's recording frame
//! runs in the task, between those calls. A task cancelled while its call runs leaves the call
//! to end on the pool; a lease it took there is let go there.

use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::cache::{CacheInner, Found};
use crate::cache_miss::Leader;
use crate::cache_shared::{Asking, Step};
use crate::deps::{Input, stable_hash};
use crate::offload::{Cleanup, Offloaded, offload};
use crate::query::Query;
use crate::store::{Fetched, Ticket};

impl<K, V> CacheInner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The async form of [`CacheInner::lookup`] for a cache on a shared store: a key the map
    /// misses is fetched on the pool.
    pub(crate) async fn lookup_shared_async(self: &Arc<Self>, key: &K) -> Option<V> {
        match self.find_counted(key) {
            Found::Hit(value) => Some(value),
            Found::Recording(value) => Some(self.read_in_computation(key, value)),
            Found::Missing => match self.missed_or_fetch(key) {
                Looked::Done(found) => found,
                Looked::Fetch(fetching) => self.land(key, fetching.await),
            },
        }
    }

    /// The async form of [`CacheInner::missed`]: an entry set aside, or the store's fetch
    /// started on the pool, to await and then [`land`](Self::land) in the task (so that
    /// nothing borrowed from the key is held across the wait).
    pub(crate) fn missed_or_fetch<Q: Query<K> + ?Sized>(self: &Arc<Self>, key: &Q) -> Looked<K, V> {
        if self.shared().is_none() {
            return Looked::Done(self.missed(key));
        }
        if self.has_parked.load(Ordering::Acquire)
            && let Some(value) = self.unpark(key)
        {
            return Looked::Done(Some(self.counted_hit(key, value)));
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let (inner, hash) = (Arc::clone(self), stable_hash(key));
        let call = offload(
            move || inner.shared().map(|shared| shared.fetch(hash, false)),
            None,
        );
        Looked::Fetch(Fetching { call, epoch })
    }

    /// What a fetch started by [`missed_or_fetch`](Self::missed_or_fetch) found, counted as
    /// `missed` counts it.
    pub(crate) fn land<Q: Query<K> + ?Sized>(&self, key: &Q, landing: Landing<K, V>) -> Option<V> {
        let value = match (landing.fetched, self.shared()) {
            (Some(fetched), Some(shared)) => self.land_fetched(shared, key, fetched, landing.epoch),
            _ => None,
        };
        match value {
            Some(value) => Some(self.counted_hit(key, value)),
            None => {
                self.counters.miss();
                None
            }
        }
    }

    /// Counts a hit served from outside the map, and records it in the computation that
    /// reads it, if one does (in the task: its frame is there).
    fn counted_hit<Q: Query<K> + ?Sized>(&self, key: &Q, value: V) -> V {
        if self.counters.hit() {
            self.note_read(key, &value, self.read_mark());
        }
        value
    }

    /// The async form of [`lead_shared`](Self::lead_shared): its asks, waits, put and release
    /// are on the pool, its pauses a runtime-free delay.
    pub(crate) async fn lead_shared_async<E, F, Fut>(
        self: &Arc<Self>,
        leader: Leader<'_, K, V>,
        compute: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let Some(key) = leader.key().cloned() else {
            return compute().await;
        };
        let mut asking = Asking::new(&key);
        let ticket = loop {
            let (inner, asked) = (Arc::clone(self), key.clone());
            let step = offload(
                move || {
                    let step = inner
                        .shared()
                        .map(|shared| asking.step(&inner, shared, &asked));
                    (asking, step)
                },
                Some(self.release_if_leased(asking.hash)),
            );
            let (asked, step) = step.await;
            asking = asked;
            match step {
                Some(Step::Found(value)) => {
                    self.computed(leader, &value, None);
                    return Ok(value);
                }
                Some(Step::Compute(ticket)) => break ticket,
                Some(Step::Pause(pause)) => Delay::new(pause).await,
                None => break None, // not shared: cannot happen, computed without a store
            }
        };
        let lease = AsyncLease {
            inner: Arc::clone(self),
            hash: asking.hash,
            ticket,
        };
        let (value, inputs) = match self.frame() {
            Some(frame) => {
                let (value, frame) = crate::deps::Recording::new(frame, compute()).await;
                (value?, Some(frame.into_inputs()))
            }
            None => (compute().await?, None),
        };
        let (value, inputs) = lease.finish(key, value, inputs).await;
        self.computed(leader, &value, inputs);
        Ok(value)
    }

    /// What lets a lease go that an ask took for a task cancelled meanwhile.
    fn release_if_leased(self: &Arc<Self>, hash: u64) -> Cleanup<(Asking, Option<Step<V>>)> {
        let inner = Arc::clone(self);
        Arc::new(move |(_, step)| {
            if let (Some(Step::Compute(Some(ticket))), Some(shared)) = (step, inner.shared()) {
                shared.release(hash, &ticket);
            }
        })
    }
}

/// What an async lookup found before any wait: the value or its absence, or a fetch to await.
#[doc(hidden)]
pub enum Looked<K, V> {
    Done(Option<V>),
    Fetch(Fetching<K, V>),
}

/// A fetch from a shared store under way on the offload pool.
#[doc(hidden)]
pub struct Fetching<K, V> {
    call: Offloaded<Option<Fetched<K, V>>>,
    epoch: u64,
}

/// What a [`Fetching`] found, to land in the cache.
#[doc(hidden)]
pub struct Landing<K, V> {
    fetched: Option<Fetched<K, V>>,
    epoch: u64,
}

impl<K, V> Future for Fetching<K, V> {
    type Output = Landing<K, V>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Landing<K, V>> {
        let epoch = self.epoch;
        Pin::new(&mut self.call)
            .poll(cx)
            .map(|fetched| Landing { fetched, epoch })
    }
}

/// The async form of `cache_shared::Lease`: the put with the ticket is awaited on the pool;
/// dropped unfinished (the computation failed, panicked or was cancelled), the lease is let go
/// on the pool, not awaited.
struct AsyncLease<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    inner: Arc<CacheInner<K, V>>,
    hash: u64,
    ticket: Option<Ticket>,
}

impl<K, V> AsyncLease<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Puts `value` with the ticket (see `cache_shared::Lease::finish`); hands the value and
    /// inputs back.
    async fn finish(
        mut self,
        key: K,
        value: V,
        inputs: Option<Vec<Input>>,
    ) -> (V, Option<Vec<Input>>) {
        let Some(ticket) = self.ticket.take() else {
            return (value, inputs);
        };
        let inner = Arc::clone(&self.inner);
        offload(
            move || {
                if let Some(shared) = inner.shared() {
                    shared.put(&key, &value, &ticket, inputs.as_deref().unwrap_or_default());
                }
                (value, inputs)
            },
            None,
        )
        .await
    }
}

impl<K, V> Drop for AsyncLease<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let (inner, hash) = (Arc::clone(&self.inner), self.hash);
            release_later(inner, hash, ticket);
        }
    }
}

/// Lets `ticket`'s lease go on the pool, not waiting for it.
fn release_later<K, V>(inner: Arc<CacheInner<K, V>>, hash: u64, ticket: Ticket)
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    drop(offload(
        move || {
            if let Some(shared) = inner.shared() {
                shared.release(hash, &ticket);
            }
        },
        None,
    ));
}

/// A pause for async waiters that needs no runtime: a thread sleeps, then wakes the task
/// with the waker of its latest poll.
struct Delay {
    duration: Duration,
    state: Option<Arc<DelayState>>,
}

#[derive(Default)]
struct DelayState {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Delay {
    fn new(duration: Duration) -> Self {
        Delay {
            duration,
            state: None,
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let state = match &self.state {
            Some(state) => state.clone(),
            None => {
                let state = Arc::new(DelayState::default());
                let (shared, duration) = (state.clone(), self.duration);
                let spawned = std::thread::Builder::new()
                    .name("cacheman-delay".into())
                    .spawn(move || {
                        std::thread::sleep(duration);
                        shared.done.store(true, Ordering::Release);
                        let waker = shared
                            .waker
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .take();
                        if let Some(waker) = waker {
                            waker.wake();
                        }
                    });
                if spawned.is_err() {
                    return Poll::Ready(()); // no thread: ask the store again at once
                }
                self.state = Some(state.clone());
                state
            }
        };
        // The waker is stored before `done` is read again, so a wake between the two is
        // not lost.
        *state.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        if state.done.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
