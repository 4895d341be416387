//! The last value when a computation fails: `get_or_try_insert_with_fallback` and its async
//! form, which serve an expired value still held (`CacheOptions::keep_expired`) instead of
//! the computation's error. Built on the cache's public miss path, beside it rather than in it.

use std::future::Future;
use std::hash::Hash;

use crate::cache::{Cache, CacheInner, Maps};
use crate::shards::Held;

impl<K, V> CacheInner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A live value (counted as a hit), or the expired value held for `key`, if any, with
    /// nothing counted: the miss path that follows counts the miss.
    fn live_or_expired(&self, key: &K) -> Result<V, Option<V>> {
        let Maps::Tracked(shards) = &self.maps else {
            return Err(None);
        };
        match shards.get_held(key, self.time.lookup_ms()) {
            Held::Live(value) => {
                if self.counters.hit() {
                    return Ok(self.read_in_computation(key, value));
                }
                Ok(value)
            }
            Held::Expired(value) => Err(Some(value)),
            Held::Absent => Err(None),
        }
    }

    /// `expired` instead of `err`, if there is one.
    fn fall_back<E>(&self, expired: Option<V>, err: E) -> Result<V, E> {
        match expired {
            Some(value) => {
                log::warn!(
                    "cacheman: cache `{}`: the computation failed; serving the expired value \
                     still held instead of its error",
                    self.name
                );
                Ok(value)
            }
            None => Err(err),
        }
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// [`get_or_try_insert_with`](Self::get_or_try_insert_with), falling back on the last
    /// value: when `compute` fails and the cache still holds an expired value of `key` (a
    /// cache with [`CacheOptions::keep_expired`] keeps them one more time-to-live), that
    /// value is returned instead of the error and a warning is logged (`log`). The expired
    /// value is not stored again: the next call tries to compute again. Without an expired
    /// value, or on a cache that keeps none, this is `get_or_try_insert_with`. A hit costs
    /// what it costs there.
    ///
    /// # Panics
    ///
    /// On a re-entrant call for the same key, as `get_or_insert_with`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cacheman::{CacheManager, CacheOptions, ManualClock};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let clock = ManualClock::new();
    /// let options = CacheOptions::new()
    ///     .ttl(Duration::from_secs(60))
    ///     .keep_expired(true)
    ///     .clock(clock.clone());
    /// let prices = manager.register_custom_cache::<String, u32>("prices", options).unwrap();
    /// let fetch = |up: bool| {
    ///     let from_backend = || if up { Ok(3) } else { Err("offline") };
    ///     prices.get_or_try_insert_with_fallback("tea".into(), from_backend)
    /// };
    /// assert_eq!(fetch(true), Ok(3));
    /// clock.advance(Duration::from_secs(90)); // expired, still held
    /// assert_eq!(fetch(false), Ok(3)); // the last value, not "offline"
    /// clock.advance(Duration::from_secs(60)); // twice the time-to-live: gone
    /// assert_eq!(fetch(false), Err("offline"));
    /// ```
    ///
    /// [`CacheOptions::keep_expired`]: crate::CacheOptions::keep_expired
    pub fn get_or_try_insert_with_fallback<E>(
        &self,
        key: K,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        let expired = match self.inner.live_or_expired(&key) {
            Ok(value) => return Ok(value),
            Err(expired) => expired,
        };
        self.get_or_try_insert_with(key, compute)
            .or_else(|err| self.inner.fall_back(expired, err))
    }

    /// The async form of
    /// [`get_or_try_insert_with_fallback`](Self::get_or_try_insert_with_fallback).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cacheman::{CacheManager, CacheOptions, ManualClock};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = CacheManager::new("docs", dir.path());
    /// let clock = ManualClock::new();
    /// let options = CacheOptions::new()
    ///     .ttl(Duration::from_secs(60))
    ///     .keep_expired(true)
    ///     .clock(clock.clone());
    /// let rates = manager.register_custom_cache::<u8, u32>("rates", options).unwrap();
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Waker};
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = Context::from_waker(Waker::noop());
    /// #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// rates.insert(1, 7);
    /// clock.advance(Duration::from_secs(61));
    /// let down = || async { Err::<u32, _>("down") };
    /// let rate = rates.get_or_try_insert_with_fallback_async(1, down);
    /// assert_eq!(block_on(rate), Ok(7));
    /// ```
    pub async fn get_or_try_insert_with_fallback_async<E, F, Fut>(
        &self,
        key: K,
        compute: F,
    ) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let expired = match self.inner.live_or_expired(&key) {
            Ok(value) => return Ok(value),
            Err(expired) => expired,
        };
        self.get_or_try_insert_with_async(key, compute)
            .await
            .or_else(|err| self.inner.fall_back(expired, err))
    }
}
