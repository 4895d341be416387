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

use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
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
        let fetched = shared.fetch(stable_hash(key), false);
        self.land_fetched(shared, key, fetched, epoch)
    }

    /// What [`fetch_shared`](Self::fetch_shared) does with the store's answer, the cache's
    /// epoch read before it asked: the value, if it is `key`'s, given to the graph and kept
    /// in the local copy.
    pub(crate) fn land_fetched<Q: Query<K> + ?Sized>(
        &self,
        shared: &dyn SharedEntries<K, V>,
        key: &Q,
        fetched: Fetched<K, V>,
        epoch: u64,
    ) -> Option<V> {
        let hash = stable_hash(key);
        let Fetched::Found(found, value, stamp) = fetched else {
            return None;
        };
        if !key.matches(&found) {
            return None; // another key with the same hash
        }
        // Another host replaced the value this process's graph knows of the entry: the node
        // takes the new stamp, so a computation reading it now records what it read, and what
        // read the old value here is taken off.
        if let Some(link) = self.deps.get()
            && link
                .graph
                .node((link.id, hash))
                .is_some_and(|(_, known)| known != stamp)
        {
            link.graph.replaced((link.id, hash), stamp);
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
            Fetched::Found(found, value, _) if found == *key => Asked::Found(value),
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
        let mut asking = Asking::new(&key);
        let ticket = loop {
            match asking.step(self, shared, &key) {
                Step::Found(value) => {
                    self.computed(leader, &value, None);
                    return Ok(value);
                }
                Step::Compute(ticket) => break ticket,
                Step::Pause(pause) => std::thread::sleep(pause),
            }
        };
        let lease = asking.lease(shared, ticket);
        let frame = self.frame().map(crate::deps::Frame::open);
        let value = compute()?;
        let inputs = frame.map(|open| open.close().into_inputs());
        lease.finish(&key, &value, inputs.as_deref());
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

/// What a leader does next.
pub(crate) enum Step<V> {
    Found(V),
    /// Compute, holding the lease if the ticket has a token (`None`: without the store).
    Compute(Option<Ticket>),
    /// Another caller holds the lease: ask again after this pause.
    Pause(Duration),
}

/// A leader asking the store until it has the value or may compute: pauses double from
/// [`FIRST_PAUSE`] to [`MAX_PAUSE`] while another caller holds the lease (its holder renews
/// it while it computes; a dead holder's runs out), up to the store's wait bound if it has
/// one; then it computes too.
#[derive(Clone, Copy)]
pub(crate) struct Asking {
    pub(crate) hash: u64,
    started: Instant,
    pause: Duration,
}

impl Asking {
    pub(crate) fn new<K: Hash + ?Sized>(key: &K) -> Self {
        Asking {
            hash: stable_hash(key),
            started: Instant::now(),
            pause: FIRST_PAUSE,
        }
    }

    pub(crate) fn step<K, V>(
        &mut self,
        inner: &CacheInner<K, V>,
        shared: &dyn SharedEntries<K, V>,
        key: &K,
    ) -> Step<V>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        match inner.ask(shared, key, self.hash) {
            Asked::Found(value) => Step::Found(value),
            Asked::Compute(ticket) => Step::Compute(ticket),
            Asked::Wait(ticket) => {
                let mut pause = self.pause;
                if let Some(bound) = shared.wait_bound() {
                    let left = bound.saturating_sub(self.started.elapsed());
                    if left.is_zero() {
                        return Step::Compute(Some(ticket));
                    }
                    pause = pause.min(left);
                }
                self.pause = (self.pause * 2).min(MAX_PAUSE);
                Step::Pause(pause)
            }
        }
    }

    fn lease<'a, K, V>(
        &self,
        shared: &'a dyn SharedEntries<K, V>,
        ticket: Option<Ticket>,
    ) -> Lease<'a, K, V> {
        Lease {
            shared,
            hash: self.hash,
            ticket,
        }
    }
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
    /// `inputs` (what the computation read) are recorded on the store, which refuses the
    /// value if one of them changed since it was read.
    fn finish(mut self, key: &K, value: &V, inputs: Option<&[crate::deps::Input]>) {
        if let Some(ticket) = self.ticket.take() {
            self.shared
                .put(key, value, &ticket, inputs.unwrap_or_default());
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
