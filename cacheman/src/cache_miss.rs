//! A miss: the caller that leads a key's computation ([`Leader`]), and the sync miss path
//! that joins or leads the key's single flight (the async one is in `cache_async.rs`).

use std::hash::Hash;
use std::sync::atomic::Ordering;

use crate::Error;
use crate::cache::{Cache, CacheInner};
use crate::flight::{Begin, Reentrant};

pub(crate) enum Outcome<'a, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Found(V),
    Lead(Leader<'a, K, V>),
}

/// The caller computing a missing key. Dropping it without [`complete`](Leader::complete) (the
/// closure panicked, or an async leader was cancelled) abandons the flight: waiters go back and
/// try again.
pub(crate) struct Leader<'a, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    inner: &'a CacheInner<K, V>,
    /// Taken by `complete` or `drop`.
    key: Option<K>,
    /// The cache's epoch when the computation started.
    epoch: u64,
    /// The graph's invalidation generation when the computation started: an entry
    /// invalidated after it is not stored.
    generation: u64,
}

impl<'a, K, V> Leader<'a, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The lead of `key`'s computation, taken now.
    pub(crate) fn new(inner: &'a CacheInner<K, V>, key: K) -> Self {
        Leader {
            inner,
            key: Some(key),
            epoch: inner.epoch.load(Ordering::Acquire),
            generation: inner.generation(),
        }
    }
}

impl<K, V> Leader<'_, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Stores `value` and hands it to the waiters if `storable` (no input of it changed, and
    /// it was not invalidated, while it was computed) and the cache was not invalidated
    /// meanwhile; else returns it to this caller only, and the waiters (whose lookups may have
    /// started after the change) compute again. Called under the cache's `landing` read lock.
    pub(crate) fn complete(mut self, value: &V, storable: bool) {
        if let Some(key) = self.key.take() {
            let storable = storable && self.is_current();
            self.inner
                .finish_miss(key, Some(value), self.epoch, storable);
        }
    }

    pub(crate) fn key(&self) -> Option<&K> {
        self.key.as_ref()
    }

    /// Whether the cache was not invalidated as a whole since the computation started (then
    /// the value is returned but not stored).
    pub(crate) fn is_current(&self) -> bool {
        self.inner.epoch.load(Ordering::Acquire) == self.epoch
    }

    /// The graph's invalidation generation when the computation started.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

impl<K, V> Drop for Leader<'_, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.inner.finish_miss(key, None, self.epoch, false);
        }
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The miss path of [`get_or_try_insert_with`](Self::get_or_try_insert_with): joins or
    /// leads the key's single flight.
    #[inline(never)]
    pub(crate) fn compute_missing<E>(
        &self,
        key: K,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        let inner = &*self.inner;
        let outcome = loop {
            match inner.begin_miss(&key, true) {
                Ok(Begin::Ready(value)) => break inner.found(&key, value),
                Ok(Begin::Follow(flight)) => match flight.wait() {
                    Some(value) => break inner.found(&key, value),
                    None => continue, // the leader gave up; try again
                },
                Ok(Begin::Lead) => break Outcome::Lead(inner.leader(key)),
                Err(Reentrant) => panic!(
                    "{}",
                    Error::Reentrant {
                        cache: inner.name.clone()
                    }
                ),
            }
        };
        match outcome {
            Outcome::Found(value) => Ok(value),
            Outcome::Lead(leader) => {
                if let Some(shared) = inner.shared() {
                    return inner.lead_shared(shared, leader, compute);
                }
                let frame = inner.frame().map(crate::deps::Frame::open);
                let value = compute()?;
                let inputs = frame.map(|open| open.close().into_inputs());
                inner.computed(leader, &value, inputs);
                Ok(value)
            }
        }
    }
}
