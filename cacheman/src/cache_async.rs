//! The async forms of a cache's single-flight computations: concurrent callers of one key
//! await one computation, which records its reads through the frame its future carries.

use std::future::Future;
use std::hash::Hash;

use crate::Error;
use crate::cache::Cache;
use crate::cache_miss::Outcome;
use crate::flight::{Begin, Reentrant};

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The async form of [`get_or_insert_with`](Self::get_or_insert_with): concurrent callers
    /// of one key await a single computation. No lock is held across an `.await`, and no async
    /// runtime is required.
    ///
    /// A task that awaits its own key from inside its computation is not detected (tasks move
    /// between threads) and waits forever; don't.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("async").unwrap();
    /// let fut = cache.get_or_insert_with_async(2, || async { 2 + 2 });
    /// # let value = futures_lite_block_on(fut);
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Waker};
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = Context::from_waker(Waker::noop());
    /// #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// assert_eq!(value, 4);
    /// ```
    pub async fn get_or_insert_with_async<F, Fut>(&self, key: K, compute: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let result = self
            .get_or_try_insert_with_async(key, || async {
                Ok::<V, std::convert::Infallible>(compute().await)
            })
            .await;
        match result {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// The async form of [`get_or_try_insert_with`](Self::get_or_try_insert_with).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let manager = cacheman::CacheManager::new("docs", dir.path());
    /// let cache = manager.register_cache::<u32, u32>("async_try").unwrap();
    /// let fut = cache.get_or_try_insert_with_async(1, || async { Err::<u32, &str>("offline") });
    /// # let result = block_on(fut);
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     use std::task::{Context, Poll, Waker};
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = Context::from_waker(Waker::noop());
    /// #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// assert_eq!(result, Err("offline"));
    /// assert!(cache.is_empty());
    /// ```
    pub async fn get_or_try_insert_with_async<E, F, Fut>(&self, key: K, compute: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let found = if self.inner.shared().is_some() {
            self.inner.lookup_shared_async(&key).await
        } else {
            self.inner.lookup(&key)
        };
        if let Some(value) = found {
            return Ok(value);
        }
        self.compute_missing_async(key, compute).await
    }

    /// The miss path of
    /// [`get_or_try_insert_with_async`](Self::get_or_try_insert_with_async).
    pub(crate) async fn compute_missing_async<E, F, Fut>(&self, key: K, compute: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let inner = &*self.inner;
        let outcome = loop {
            match inner.begin_miss(&key, false) {
                Ok(Begin::Ready(value)) => break inner.found(&key, value),
                Ok(Begin::Follow(flight)) => match flight.wait_async().await {
                    Some(value) => break inner.found(&key, value),
                    None => continue,
                },
                Ok(Begin::Lead) => break Outcome::Lead(inner.leader(key)),
                // Not reachable: async callers skip the re-entrancy check.
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
                if inner.shared().is_some() {
                    return self.inner.lead_shared_async(leader, compute).await;
                }
                let (value, inputs) = match inner.frame() {
                    Some(frame) => {
                        let (value, frame) = crate::deps::Recording::new(frame, compute()).await;
                        (value?, Some(frame.into_inputs()))
                    }
                    None => (compute().await?, None),
                };
                inner.computed(leader, &value, inputs);
                Ok(value)
            }
        }
    }
}
