//! The manager's choice of Redis (feature `redis`): the server of the persistent caches
//! registered from now on, and the store a registration builds from it.

use std::hash::Hash;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::manager::{read, write};
use crate::options::CacheOptions;
use crate::store::redis::RedisStore;
use crate::store::{Identity, Store};
use crate::{CacheManager, Error, Redis};

impl CacheManager {
    /// Keeps the persistent caches registered from now on (whose options name no Redis server
    /// of their own) on `redis` instead of in files, shared by every process and machine that
    /// registers them there. Memory caches (`persistent(false)`) stay in memory.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs_set_redis", dir.path());
    /// manager.set_redis("redis://127.0.0.1:6379/");
    /// assert!(manager.redis().is_some());
    /// ```
    pub fn set_redis(&self, redis: impl Into<Redis>) {
        *write(&self.shared.redis) = Some(redis.into());
    }

    /// [`set_redis`](Self::set_redis) on a new manager, for building one in an expression.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("fleet", dir.path())
    ///     .with_redis(cacheman::Redis::new("redis://127.0.0.1:6379/").local_copy(true));
    /// # drop(manager);
    /// ```
    #[must_use]
    pub fn with_redis(self, redis: impl Into<Redis>) -> Self {
        self.set_redis(redis);
        self
    }

    /// The Redis server of the persistent caches registered from now on, if one is set.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs_redis_none", dir.path());
    /// assert!(manager.redis().is_none());
    /// ```
    pub fn redis(&self) -> Option<Redis> {
        read(&self.shared.redis).clone()
    }

    /// Bumps the Redis generations of `name` and its declared dependents in one step (on a
    /// Cluster, one cache at a time, each after every cache it depends on), so that no host
    /// sees one invalidated and another not yet (each cache's own invalidation then follows,
    /// as for files).
    pub(crate) fn bump_redis_generations(&self, name: &str) -> Result<(), Error> {
        let mut caches = vec![name.to_owned()];
        caches.extend(self.shared.entries.dependents_of(name));
        // Upstream first: a cache has strictly more of the set upstream of it than any cache
        // it depends on has.
        let upstream = |cache: &String| {
            caches
                .iter()
                .filter(|other| self.shared.entries.dependents_of(other).contains(cache))
                .count()
        };
        let mut ordered: Vec<(usize, String)> =
            caches.iter().map(|c| (upstream(c), c.clone())).collect();
        ordered.sort_by_key(|(upstream, _)| *upstream);
        let caches: Vec<String> = ordered.into_iter().map(|(_, c)| c).collect();
        crate::store::redis::generations::bump_together(self.name(), self.redis().as_ref(), &caches)
    }

    /// The Redis store of a cache registered with `options`, when they or the manager name a
    /// server.
    pub(crate) fn redis_store<K, V>(
        &self,
        name: &str,
        options: &CacheOptions,
    ) -> Result<Option<Box<dyn Store<K, V>>>, Error>
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
        V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let redis = match &options.redis {
            Some(redis) => redis.clone(),
            None if options.persistent => match self.redis() {
                Some(redis) => redis,
                None => return Ok(None),
            },
            None => return Ok(None),
        };
        crate::store::files::check_name("manager", self.name())?;
        crate::store::files::check_name("cache", name)?;
        let identity =
            Identity::new::<K, V>(options.codec, options.fn_fingerprint, options.ttl.is_some());
        let store = RedisStore::new(self.name(), name, identity, &redis, options.ttl)?;
        Ok(Some(Box::new(store)))
    }
}
