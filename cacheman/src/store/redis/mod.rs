//! Caches shared by many machines, on a Redis server (feature `redis`): the configuration
//! ([`Redis`]), the connections to one server (`server.rs`), the subscriber that hears other
//! hosts' invalidations (`subscriber.rs`) and the store itself (`redis_store.rs`).

pub(crate) mod generations;
mod reader_caches;
mod readers;
mod redis_store;
mod renewal;
mod scripts;
mod server;
mod subscriber;

use std::time::Duration;

pub(crate) use redis_store::RedisStore;

/// Where and how a cache keeps its entries on a Redis server, shared by every process (on any
/// machine) that registers a cache of the same manager, name, types and function.
///
/// Entries are read and written one by one; an invalidation on one host reaches every other at
/// its next lookup; a miss takes a lease on its key so that one caller across all hosts runs
/// the computation while the others wait for its value. When the server is down or slow, the
/// function still returns its computed value (with a `log` warning and
/// [`CacheStats::store_errors`](crate::CacheStats::store_errors) counting), and connections are
/// made again by themselves. See README's "When one machine is not enough".
///
/// ```
/// use std::time::Duration;
/// use cacheman::{CacheOptions, Redis};
///
/// let redis = Redis::new("redis://127.0.0.1:6379/")
///     .lease(Duration::from_secs(10))
///     .local_copy(true);
/// let options = CacheOptions::new().redis(redis);
/// # drop(options);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redis {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) lease: Duration,
    pub(crate) wait: Option<Duration>,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) local_copy: bool,
}

impl Redis {
    /// The server at `url` (`redis://[[user]:password@]host:port[/db]`), or the Redis Cluster
    /// named by some of its nodes (`redis+cluster://[[user]:password@]host:port[,host:port...]`:
    /// the client learns the rest from them, follows the Cluster's redirections, and each
    /// cache's keys stay in one slot through their hash tag), with the defaults: keys
    /// under `cacheman`, 30 s leases renewed while their holder computes, callers wait for
    /// another's lease as long as it is held, 1 s to connect, 1 s per command, 1 s before
    /// trying a server that failed again, no local copy (every lookup one round trip).
    ///
    /// ```
    /// let redis = cacheman::Redis::new("redis://127.0.0.1:6379/");
    /// let cluster = cacheman::Redis::new("redis+cluster://10.0.0.1:7000,10.0.0.2:7000");
    /// # drop((redis, cluster));
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        Redis {
            url: url.into(),
            prefix: "cacheman".into(),
            lease: Duration::from_secs(30),
            wait: None,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(1),
            retry_after: Duration::from_secs(1),
            local_copy: false,
        }
    }

    /// The server named by the environment variable `CACHEMAN_REDIS_URL` (what
    /// `#[cached(store = "redis")]` uses).
    ///
    /// ```
    /// match cacheman::Redis::from_env() {
    ///     Ok(redis) => drop(redis),
    ///     Err(err) => assert!(err.to_string().contains("CACHEMAN_REDIS_URL")),
    /// }
    /// ```
    pub fn from_env() -> Result<Self, crate::Error> {
        match std::env::var(ENV_URL) {
            Ok(url) if !url.trim().is_empty() => Ok(Redis::new(url.trim())),
            _ => Err(crate::Error::InvalidOptions {
                cache: String::new(),
                reason: format!(
                    "no Redis server is named: set {ENV_URL} (e.g. redis://127.0.0.1:6379/)"
                ),
            }),
        }
    }

    /// The first part of every key (default `cacheman`): keys are
    /// `<prefix>:{<manager>:<cache>}:...`, so programs that share a server keep apart by
    /// prefix or by manager name.
    ///
    /// ```
    /// let redis = cacheman::Redis::new("redis://127.0.0.1/").prefix("billing");
    /// # drop(redis);
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a miss's lease on its key lasts unless renewed (default 30 s): other hosts'
    /// callers of the key wait for its value meanwhile. The holder's process renews it every
    /// third of this while the computation runs, so a computation longer than the lease
    /// still runs once; a holder that dies stops renewing, its lease expires within this
    /// long, and a waiting caller takes over. Short leases find a dead holder sooner but
    /// cost a renewal (one round trip) every third of their length per computation.
    ///
    /// ```
    /// let redis = cacheman::Redis::new("redis://127.0.0.1/").lease(std::time::Duration::from_secs(5));
    /// # drop(redis);
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long a caller waits for another caller's lease before it computes the value itself
    /// (default: no bound; it waits as long as the lease is held, that is while its holder
    /// computes, or until a dead holder's lease expires, then takes it over). A bound caps
    /// the wait on a live holder whose computation takes longer: the key is then computed
    /// twice, as callers of one host never do.
    ///
    /// ```
    /// let redis = cacheman::Redis::new("redis://127.0.0.1/").wait(std::time::Duration::from_secs(2));
    /// # drop(redis);
    /// ```
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// How long connecting may take (default 1 s).
    ///
    /// ```
    /// let redis = cacheman::Redis::new("redis://127.0.0.1/")
    ///     .connect_timeout(std::time::Duration::from_millis(200));
    /// # drop(redis);
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one command may take to be sent and answered (default 1 s); past it the
    /// command counts as failed and its connection is dropped.
    ///
    /// ```
    /// let redis = cacheman::Redis::new("redis://127.0.0.1/")
    ///     .command_timeout(std::time::Duration::from_millis(200));
    /// # drop(redis);
    /// ```
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// After a failed connection, how long operations skip the server (computing without it)
    /// before one tries to connect again (default 1 s), so that a down server costs each call
    /// nothing rather than a connect timeout.
    ///
    /// ```
    /// let redis = cacheman::Redis::new("redis://127.0.0.1/")
    ///     .retry_after(std::time::Duration::from_millis(100));
    /// # drop(redis);
    /// ```
    pub fn retry_after(mut self, pause: Duration) -> Self {
        self.retry_after = pause;
        self
    }

    /// Whether the cache keeps the values it fetched or computed in its memory and serves hits
    /// from there, as fast as a memory cache's (default `false`: every lookup asks the
    /// server). The copy is dropped whenever a host invalidates the cache or inserts or
    /// removes a key of it (heard through Redis pub/sub, so a few milliseconds late: a lookup in
    /// that window may still get the value from before), and whenever the subscription is lost;
    /// while it is lost, nothing is kept (see docs/PROMISES.md, "Caches on Redis").
    ///
    /// ```
    /// let redis = cacheman::Redis::new("redis://127.0.0.1/").local_copy(true);
    /// # drop(redis);
    /// ```
    pub fn local_copy(mut self, local_copy: bool) -> Self {
        self.local_copy = local_copy;
        self
    }

    pub(crate) fn wait_bound(&self) -> Option<Duration> {
        self.wait
    }
}

impl From<&str> for Redis {
    fn from(url: &str) -> Self {
        Redis::new(url)
    }
}

impl From<String> for Redis {
    fn from(url: String) -> Self {
        Redis::new(url)
    }
}

/// The environment variable naming the server of `#[cached(store = "redis")]` functions.
pub(crate) const ENV_URL: &str = "CACHEMAN_REDIS_URL";
