//! A cache's entries on a Redis server, one key each. Keys (`{..}` is the hash tag that keeps
//! a cache's keys in one Cluster slot):
//!
//! ```text
//! <prefix>:{<manager>:<cache>}:gen                       the generation, bumped by invalidations
//! <prefix>:{<manager>:<cache>}:inv                       the channel invalidations are told on
//! <prefix>:{<manager>:<cache>}:<types><fn>:<gen>:e:<h>   an entry: its stamp, then postcard of
//!                                                        (key, value)
//! <prefix>:{<manager>:<cache>}:<types><fn>:<gen>:l:<h>   the lease on computing it
//! <prefix>:{<manager>:<cache>}:r:<h>                     the entries that read it (readers.rs)
//! <prefix>:{<manager>:<cache>}:ver:<h>                   its version, moved by invalidations
//! <prefix>:{<manager>:<cache>}:rc                        the caches that read its entries
//!                                                        (reader_caches.rs)
//! ```
//!
//! `<types>` and `<fn>` are the type and function fingerprints (16 hex digits each), so a
//! changed body or type never reads old entries; `<h>` is the key's stable hash in hex.

use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Redis;
use super::generations::{self, Generation};
use super::reader_caches;
use super::readers::{self, EntryKeys};
use super::scripts;
use super::server::Server;
use crate::Error;
use crate::deps::Input;
use crate::store::codec;
use crate::store::{Fetched, Identity, Loaded, Merged, Outgoing, SharedEntries, Store, Ticket};

/// The Redis store of one cache.
pub(crate) struct RedisStore<K, V> {
    manager: String,
    cache: String,
    server: Arc<Server>,
    /// `<prefix>:{<manager>:<cache>}`: what every key of the cache starts with.
    base: String,
    generation_key: String,
    channel: String,
    /// The same keys, for invalidations of several caches at once.
    _generation: Arc<Generation>,
    /// What every entry and lease key starts with, up to the generation.
    entries: String,
    /// Expiry of entries (the cache's time-to-live); 0: none.
    ttl_ms: u64,
    lease_ms: u64,
    wait: Option<Duration>,
    local_copy: bool,
    /// Whether invalidations of this cache are being heard (the subscriber sets it).
    heard: Arc<AtomicBool>,
    watch_id: Mutex<Option<u64>>,
    errors: AtomicU64,
    _rows: PhantomData<fn() -> (K, V)>,
}

impl<K, V> RedisStore<K, V> {
    pub(crate) fn new(
        manager: &str,
        cache: &str,
        identity: Identity,
        redis: &Redis,
        ttl: Option<Duration>,
    ) -> Result<Self, Error> {
        let server = Server::shared(redis).map_err(|message| Error::InvalidOptions {
            cache: cache.to_owned(),
            reason: format!("the Redis URL {:?} is not usable: {message}", redis.url),
        })?;
        let base = generations::base(&redis.prefix, manager, cache);
        let entries = format!(
            "{base}:{:016x}{:016x}:",
            identity.type_fingerprint, identity.fn_fingerprint
        );
        let generation = Arc::new(Generation::registered(
            server.clone(),
            &base,
            entries.clone(),
        ));
        generations::register(manager, cache, &generation);
        Ok(RedisStore {
            manager: manager.to_owned(),
            cache: cache.to_owned(),
            generation_key: generation.key.clone(),
            channel: generation.channel.clone(),
            _generation: generation,
            base,
            entries,
            server,
            ttl_ms: ttl.map_or(0, |t| (t.as_millis() as u64).max(1)),
            lease_ms: (redis.lease.as_millis() as u64).max(1),
            wait: redis.wait_bound(),
            local_copy: redis.local_copy,
            heard: Arc::new(AtomicBool::new(false)),
            watch_id: Mutex::new(None),
            errors: AtomicU64::new(0),
            _rows: PhantomData,
        })
    }

    /// Counts and logs a failed operation: a warning for the first failure since the server
    /// last answered, debug after.
    fn failed(&self, action: &str, message: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let text = format!(
            "cacheman: could not {action} of cache `{}` on the Redis server {}: {message}; \
             values are computed here, unshared, until it answers again",
            self.cache, self.server.name
        );
        if self.server.first_failure() {
            log::warn!("{text}");
        } else {
            log::debug!("{text}");
        }
    }

    fn error(&self, action: &'static str, message: String) -> Error {
        Error::Redis {
            cache: self.cache.clone(),
            server: self.server.name.clone(),
            action,
            message,
        }
    }

    /// Bumps this cache's generation and tells the subscribers.
    fn bump(&self, action: &'static str) -> Result<(), Error> {
        let outcome = self.server.run(|c| {
            scripts::INVALIDATE
                .key(&self.generation_key)
                .arg(&self.channel)
                .invoke::<i64>(c)
        });
        outcome.map(drop).map_err(|message| {
            self.failed(action, &message);
            self.error(action, message)
        })
    }
}

/// A lease token no other caller on any host holds: random per process, counted within it.
fn token() -> u64 {
    static SEED: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let seed = SEED.get_or_init(foldhash::fast::RandomState::default);
    seed.hash_one((std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed)))
}

fn hex(hash: u64) -> String {
    format!("{hash:016x}")
}

/// The bytes before an entry's postcard row: its stamp.
const STAMP_LEN: usize = 8;

/// The readers a `PUT` returned after its first element.
fn members(reply: &[redis::Value]) -> Vec<Vec<u8>> {
    reply
        .iter()
        .skip(1)
        .filter_map(|member| match member {
            redis::Value::BulkString(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

/// A generation as the scripts return it.
fn generation(value: &redis::Value) -> Option<u64> {
    match value {
        redis::Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        redis::Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

impl<K, V> RedisStore<K, V>
where
    K: std::hash::Hash + Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    /// Reads the script's answer to a fetch; `Err`: what is wrong with it.
    fn read_fetched(
        &self,
        reply: redis::Value,
        token: Option<u64>,
    ) -> Result<Fetched<K, V>, String> {
        let redis::Value::Array(parts) = reply else {
            return Err(format!("unexpected reply {reply:?}"));
        };
        let generation = parts
            .first()
            .and_then(generation)
            .ok_or_else(|| format!("the generation key {} holds no number", self.generation_key))?;
        let version = parts.get(3).and_then(self::generation).unwrap_or(0);
        let ticket = |token| Ticket {
            generation,
            token,
            version,
        };
        match (parts.get(1), parts.get(2)) {
            (Some(redis::Value::Int(1)), Some(redis::Value::BulkString(bytes))) => {
                let decoded = match (bytes.get(..STAMP_LEN), bytes.get(STAMP_LEN..)) {
                    (Some(stamp), Some(row)) => codec::postcard_from_one::<(K, V)>(row)
                        .map(|(key, value)| (key, value, stamp)),
                    _ => Err("shorter than its stamp".to_owned()),
                };
                match decoded {
                    Ok((key, value, stamp)) => {
                        let stamp = u64::from_le_bytes(stamp.try_into().unwrap_or_default());
                        Ok(Fetched::Found(key, value, stamp))
                    }
                    Err(reason) => {
                        // Another program's value, or a damaged one: a miss, recomputed and
                        // overwritten (no lease was taken: the value was there).
                        log::warn!(
                            "cacheman: an entry of cache `{}` on the Redis server {} does not \
                             decode ({reason}); treated as a miss and replaced",
                            self.cache,
                            self.server.name
                        );
                        Ok(Fetched::Leased(ticket(None)))
                    }
                }
            }
            (Some(redis::Value::Int(2)), _) => Ok(Fetched::Leased(ticket(token))),
            (Some(redis::Value::Int(3)), _) => Ok(Fetched::Held(ticket(None))),
            (Some(redis::Value::Int(0)), _) => Ok(Fetched::Leased(ticket(None))),
            _ => Err(format!("unexpected reply {parts:?}")),
        }
    }

    /// Puts `value` under `key`: in the ticket's generation and version if there is one
    /// (then lets its lease go), else in the current one (an insert). Readers recorded of the
    /// key's previous value, if the value changed, are invalidated after.
    fn put_at(&self, key: &K, value: &V, ticket: Option<&Ticket>) {
        let token = ticket.and_then(|t| t.token);
        if let Some(token) = token {
            self.server.renewals.let_go(token);
        }
        let hash = crate::deps::stable_hash(key);
        let encoded = codec::postcard_fingerprint(value)
            .ok_or_else(|| "the value does not encode".to_owned())
            .and_then(|stamp| {
                let row = codec::postcard_one(&(key, value))?;
                Ok([&stamp.to_le_bytes()[..], &row].concat())
            });
        let bytes = match encoded {
            Ok(bytes) => bytes,
            Err(reason) => {
                log::warn!(
                    "cacheman: could not encode an entry of cache `{}` for Redis: {reason}; \
                     not shared",
                    self.cache
                );
                return;
            }
        };
        let entry = EntryKeys::new(&self.entries, hash);
        let outcome = self.server.run(|c| {
            scripts::PUT
                .key(&self.generation_key)
                .arg(&self.entries)
                .arg(&entry.hash)
                .arg(ticket.map_or(String::new(), |t| t.generation.to_string()))
                .arg(bytes.as_slice())
                .arg(self.ttl_ms)
                .arg(token.map_or(String::new(), |t| t.to_string()))
                // An insert (no ticket) tells the hosts keeping local copies.
                .arg(if ticket.is_none() {
                    self.channel.as_str()
                } else {
                    ""
                })
                .arg(entry.version())
                .arg(ticket.map_or(String::new(), |t| t.version.to_string()))
                .arg(entry.readers())
                .invoke::<Vec<redis::Value>>(c)
        });
        let stale = match outcome {
            Ok(reply) => readers::entries_of(&members(&reply)),
            Err(message) => return self.failed("store an entry", &message),
        };
        if !stale.is_empty()
            && let Err(message) = readers::invalidate(&self.server, stale)
        {
            self.failed("invalidate the readers of a changed entry", &message);
        }
    }

    /// Records this computation of `hash` among the readers of each entry it read on this
    /// server; `false` if one of them no longer has the stamp it saw (the value is stale
    /// and must not be stored) or the server could not be asked.
    fn record_reads(&self, hash: u64, inputs: &[Input]) -> bool {
        let reader = EntryKeys::new(&self.entries, hash);
        for input in inputs {
            let Some(read) =
                generations::registered_by_id(&self.manager, input.source, &self.server)
            else {
                // Not a cache on this server in this process (a file cache, or one on another
                // server, whose invalidations cannot reach this one): nothing to record here.
                continue;
            };
            let Some(entries) = &read.entries else {
                continue;
            };
            let read = EntryKeys::new(entries, input.key);
            match readers::record_read(&self.server, &read, input.seen, &reader, self.ttl_ms) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(message) => {
                    self.failed("record what an entry read", &message);
                    return false;
                }
            }
        }
        true
    }
}

impl<K, V> Drop for RedisStore<K, V> {
    fn drop(&mut self) {
        if let Some(id) = *self.watch_id.lock().unwrap_or_else(|e| e.into_inner()) {
            self.server.hub.unwatch(id);
        }
    }
}

impl<K, V> Store<K, V> for RedisStore<K, V>
where
    K: std::hash::Hash + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Nothing to bring in: entries are fetched one by one at their misses.
    fn load(&self) -> Result<Option<Loaded<K, V>>, Error> {
        Ok(None)
    }

    /// Nothing left to write: every computed value and insert went to the server at once.
    fn save(&self, _outgoing: Outgoing<K, V>) -> Result<Merged<K, V>, Error> {
        Ok(Merged::Written)
    }

    /// Bumps the generation: every host's entries of the cache become unreachable at once
    /// (left to their expiry or the server's eviction), and subscribers drop their copies.
    /// So do, whole, the caches any host recorded as having read its entries, transitively
    /// (`reader_caches.rs`). The epoch is the file store's currency; here the generation
    /// counter is.
    fn invalidate(&self, _epoch: u64) -> Result<(), Error> {
        let action = "invalidate the cache and the caches that read it";
        reader_caches::invalidate(&self.server, &self.base).map_err(|message| {
            self.failed(action, &message);
            self.error(action, message)
        })
    }

    /// As `invalidate`: the old entries become unreachable.
    fn delete(&self) -> Result<(), Error> {
        self.bump("delete the cache's entries")
    }

    fn fingerprint(&self, value: &V) -> Option<u64> {
        codec::postcard_fingerprint(value)
    }

    fn shared(&self) -> Option<&dyn SharedEntries<K, V>> {
        Some(self)
    }
}

impl<K, V> SharedEntries<K, V> for RedisStore<K, V>
where
    K: std::hash::Hash + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn watch(&self, on_remote_invalidation: Box<dyn Fn() + Send + Sync>) {
        if !self.local_copy {
            return; // every lookup asks the server: nothing local to drop
        }
        let id = self.server.hub.watch(
            &self.server,
            self.channel.clone(),
            self.heard.clone(),
            on_remote_invalidation,
        );
        *self.watch_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
    }

    fn local_copy(&self) -> bool {
        self.local_copy && self.heard.load(Ordering::Acquire)
    }

    fn fetch(&self, hash: u64, lease: bool) -> Fetched<K, V> {
        let token = lease.then(token);
        let entry = EntryKeys::new(&self.entries, hash);
        let reply = self.server.run(|c| {
            scripts::FETCH
                .key(&self.generation_key)
                .arg(&self.entries)
                .arg(&entry.hash)
                .arg(token.unwrap_or(0))
                .arg(self.lease_ms)
                .arg(u8::from(lease))
                .arg(if lease {
                    entry.version()
                } else {
                    String::new()
                })
                .invoke::<redis::Value>(c)
        });
        match reply.and_then(|reply| self.read_fetched(reply, token)) {
            Ok(Fetched::Leased(ticket)) => {
                if let Some(token) = ticket.token {
                    // Renewed while this caller computes: `put` or `release` lets it go.
                    let key = format!("{}{}:l:{}", self.entries, ticket.generation, hex(hash));
                    self.server
                        .renewals
                        .hold(&self.server, key, token, self.lease_ms);
                }
                Fetched::Leased(ticket)
            }
            Ok(fetched) => fetched,
            Err(message) => {
                self.failed("fetch an entry", &message);
                Fetched::Unavailable
            }
        }
    }

    fn put(&self, key: &K, value: &V, ticket: &Ticket, inputs: &[Input]) {
        let hash = crate::deps::stable_hash(key);
        if !inputs.is_empty() && !self.record_reads(hash, inputs) {
            return self.release(hash, ticket);
        }
        self.put_at(key, value, Some(ticket));
    }

    fn release(&self, hash: u64, ticket: &Ticket) {
        let Some(token) = ticket.token else {
            return;
        };
        self.server.renewals.let_go(token);
        let outcome = self.server.run(|c| {
            scripts::RELEASE
                .key(&self.generation_key)
                .arg(&self.entries)
                .arg(hex(hash))
                .arg(ticket.generation)
                .arg(token)
                .invoke::<i64>(c)
        });
        if let Err(message) = outcome {
            self.failed("release a lease", &message);
        }
    }

    fn put_current(&self, key: &K, value: &V) {
        self.put_at(key, value, None);
    }

    fn invalidate_entry(&self, hash: u64) {
        let start = vec![EntryKeys::new(&self.entries, hash)];
        if let Err(message) = readers::invalidate(&self.server, start) {
            self.failed("invalidate an entry and what read it", &message);
        }
    }

    fn remove(&self, hash: u64) {
        let outcome = self.server.run(|c| {
            scripts::REMOVE
                .key(&self.generation_key)
                .arg(&self.entries)
                .arg(hex(hash))
                .arg(&self.channel)
                .invoke::<i64>(c)
        });
        if let Err(message) = outcome {
            self.failed("remove an entry", &message);
        }
    }

    fn wait_bound(&self) -> Option<Duration> {
        self.wait
    }

    fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}
