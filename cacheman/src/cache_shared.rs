//! A cache on a shared store (Redis): the miss path asks the store before computing (its
//! value, else a lease on computing it, else wait for the lease's holder), puts what it
//! computed, and `insert` / `remove` write through. Nothing here runs for a cache whose store
//! is not shared; a plain hit never comes here.
//!
//! The local copy (the cache's own map) holds entries only while the store says so
//! (`SharedEntries::local_copy`: asked for, and invalidations heard); otherwise the map holds
//! nothing but in-flight markers and every lookup is a round trip. A remote invalidation drops
//! the copy through the callback handed to the store at registration, under the landing lock
//! and with an epoch bump, so that no value fetched or computed before it lands after it.

use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::cache::{CacheInner, on_maps};
use crate::cache_miss::Leader;
use crate::deps::stable_hash;
use crate::query::Query;
use crate::store::{Fetched, SharedEntries, Ticket};

/// The first pause of a caller waiting for another's lease; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// What the store said to a leader.
enum Asked<V> {
    Found(V),
    /// Compute, holding the lease if the ticket has a token (`None`: the store is down).
    Compute(Option<Ticket>),
    /// Another caller holds the lease.
    Wait(Ticket),
}

impl<K, V> CacheInner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The store's per-entry operations, when it is shared.
    #[inline]
    pub(crate) fn shared(&self) -> Option<&dyn SharedEntries<K, V>> {
        self.store.as_deref()?.shared()
    }

    /// Whether computed and fetched values may stay in the map: always, unless the store is
    /// shared and keeps no local copy now.
    pub(crate) fn keeps_local(&self) -> bool {
        self.shared().is_none_or(|shared| shared.local_copy())
    }

    /// Hands a shared store the callback through which other hosts' invalidations drop this
    /// cache's local copy (at registration).
    pub(crate) fn watch_shared(this: &Arc<Self>) {
        if let Some(shared) = this.shared() {
            let weak: Weak<Self> = Arc::downgrade(this);
            shared.watch(Box::new(move || {
                if let Some(inner) = weak.upgrade() {
                    inner.drop_local_copy();
                }
            }));
        }
    }

    /// Drops every entry held in memory (not the store's): another host invalidated the
    /// cache, or invalidations can no longer be heard. The epoch moves, so a computation or
    /// fetch that started before does not store its value here.
    fn drop_local_copy(&self) {
        let dropped = {
            let _landing = self.landing_exclusive();
            self.epoch.fetch_add(1, Ordering::AcqRel);
            self.drop_all_parked();
            on_maps!(self, s, _now => s.clear())
        };
        self.note_changes(dropped as u64);
    }

    /// A lookup the map missed, on a shared store: the store's value of `key`, kept in the
    /// map if the cache keeps a local copy.
    #[cold]
    pub(crate) fn fetch_shared<Q: Query<K> + ?Sized>(
        &self,
        shared: &dyn SharedEntries<K, V>,
        key: &Q,
    ) -> Option<V> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let Fetched::Found(found, value) = shared.fetch(stable_hash(key), false) else {
            return None;
        };
        if !key.matches(&found) {
            return None; // another key with the same hash
        }
        if shared.local_copy() {
            let _landing = self.landing();
            if self.epoch.load(Ordering::Acquire) == epoch {
                let evicted = on_maps!(self, s, now => s.insert(found, value.clone(), now).1);
                self.counters.inserted(evicted);
            }
        }
        Some(value)
    }

    /// Asks the store for the leader's key, taking its lease if nobody holds it.
    fn ask(&self, shared: &dyn SharedEntries<K, V>, key: &K, hash: u64) -> Asked<V> {
        match shared.fetch(hash, true) {
            Fetched::Found(found, value) if found == *key => Asked::Found(value),
            // Another key with the same hash: compute without the store (its entry stays).
            Fetched::Found(..) => Asked::Compute(None),
            Fetched::Leased(ticket) => Asked::Compute(Some(ticket)),
            Fetched::Held(ticket) => Asked::Wait(ticket),
            Fetched::Unavailable => Asked::Compute(None),
        }
    }

    /// A miss on a shared store, led by this caller on this host: the store's value, or the
    /// lease and a computation put to the store, or a wait for the holder of the lease
    /// (bounded: then this caller computes too).
    pub(crate) fn lead_shared<E>(
        &self,
        shared: &dyn SharedEntries<K, V>,
        leader: Leader<'_, K, V>,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        let Some(key) = leader.key().cloned() else {
            return compute();
        };
        let hash = stable_hash(&key);
        let started = Instant::now();
        let mut pause = FIRST_PAUSE;
        let ticket = loop {
            match self.ask(shared, &key, hash) {
                Asked::Found(value) => {
                    self.computed(leader, &value, None);
                    return Ok(value);
                }
                Asked::Compute(ticket) => break ticket,
                Asked::Wait(ticket) => match wait_left(shared, started) {
                    Some(left) => {
                        std::thread::sleep(pause.min(left));
                        pause = (pause * 2).min(MAX_PAUSE);
                    }
                    None => break Some(ticket),
                },
            }
        };
        let lease = Lease {
            shared,
            hash,
            ticket,
        };
        let frame = self.frame().map(crate::deps::Frame::open);
        let value = compute()?;
        let inputs = frame.map(|open| open.close().into_inputs());
        lease.finish(&key, &value);
        self.computed(leader, &value, inputs);
        Ok(value)
    }

    /// The async form of [`lead_shared`](Self::lead_shared): waits without blocking the
    /// executor's thread (the store's round trips themselves are blocking calls).
    pub(crate) async fn lead_shared_async<E, F, Fut>(
        &self,
        shared: &dyn SharedEntries<K, V>,
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
        let hash = stable_hash(&key);
        let started = Instant::now();
        let mut pause = FIRST_PAUSE;
        let ticket = loop {
            match self.ask(shared, &key, hash) {
                Asked::Found(value) => {
                    self.computed(leader, &value, None);
                    return Ok(value);
                }
                Asked::Compute(ticket) => break ticket,
                Asked::Wait(ticket) => match wait_left(shared, started) {
                    Some(left) => {
                        Delay::new(pause.min(left)).await;
                        pause = (pause * 2).min(MAX_PAUSE);
                    }
                    None => break Some(ticket),
                },
            }
        };
        let lease = Lease {
            shared,
            hash,
            ticket,
        };
        let (value, inputs) = match self.frame() {
            Some(frame) => {
                let (value, frame) = crate::deps::Recording::new(frame, compute()).await;
                (value?, Some(frame.into_inputs()))
            }
            None => (compute().await?, None),
        };
        lease.finish(&key, &value);
        self.computed(leader, &value, inputs);
        Ok(value)
    }

    /// `insert` on a shared store: written through, and kept in the map if the cache keeps a
    /// local copy. Returns the local copy's previous value.
    pub(crate) fn insert_shared(
        &self,
        shared: &dyn SharedEntries<K, V>,
        key: K,
        value: V,
    ) -> Option<V> {
        shared.put_current(&key, &value);
        if shared.local_copy() {
            self.store(key, value)
        } else {
            None
        }
    }
}

/// How much longer a caller may wait for another's lease; `None`: no longer.
fn wait_left<K, V>(shared: &dyn SharedEntries<K, V>, started: Instant) -> Option<Duration> {
    shared
        .wait_bound()
        .checked_sub(started.elapsed())
        .filter(|left| !left.is_zero())
}

/// A computation's hold on the store: its value is put with the ticket, or (the computation
/// failed, panicked or was cancelled) the lease is let go so that a waiting host takes over
/// at once.
struct Lease<'a, K, V> {
    shared: &'a dyn SharedEntries<K, V>,
    hash: u64,
    ticket: Option<Ticket>,
}

impl<K, V> Lease<'_, K, V> {
    /// Puts `value` with the ticket: the store keeps it only if the cache's generation is the
    /// one the miss started at, so a value computed across an invalidation (from any host,
    /// this one included: a local invalidation bumps the generation too) never lands. The
    /// cache's local epoch is not asked: it also moves when the local copy is merely dropped.
    fn finish(mut self, key: &K, value: &V) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.put(key, value, &ticket);
        }
    }
}

impl<K, V> Drop for Lease<'_, K, V> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.release(self.hash, &ticket);
        }
    }
}

/// A pause for async waiters that needs no runtime: a thread sleeps and wakes the task.
struct Delay {
    duration: Duration,
    done: Option<Arc<AtomicBool>>,
}

impl Delay {
    fn new(duration: Duration) -> Self {
        Delay {
            duration,
            done: None,
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.done {
            Some(done) if done.load(Ordering::Acquire) => Poll::Ready(()),
            Some(_) => Poll::Pending,
            None => {
                let done = Arc::new(AtomicBool::new(false));
                let (flag, waker, duration) = (done.clone(), cx.waker().clone(), self.duration);
                let spawned = std::thread::Builder::new()
                    .name("cacheman-delay".into())
                    .spawn(move || {
                        std::thread::sleep(duration);
                        flag.store(true, Ordering::Release);
                        waker.wake();
                    });
                if spawned.is_err() {
                    return Poll::Ready(()); // no thread: poll the store again at once
                }
                self.done = Some(done);
                Poll::Pending
            }
        }
    }
}
