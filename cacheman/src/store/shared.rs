//! The per-entry operations of a store shared by many machines (Redis): what the miss path
//! asks of it before and after computing. A store that is not shared (files) has none of them
//! ([`Store::shared`](super::Store::shared) is `None`) and the miss path is the local one.

use std::time::Duration;

use crate::deps::Input;

/// What a shared store's miss path holds while it computes: the generation the store's
/// entries of this cache were at when the miss asked, and the lease token if it took one.
/// A value put with a ticket is stored only if the generation is still current, so a value
/// computed across an invalidation (by any host) never lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub generation: u64,
    /// `Some`: this caller holds the key's lease (`SET NX PX`), released by its put.
    pub token: Option<u64>,
    /// The entry's version when the miss asked: an invalidation of the entry (or of one it
    /// read) moves it, and a put with an older one does not land.
    pub version: u64,
}

/// The answer of [`SharedEntries::fetch`].
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // made by the Redis store only
pub(crate) enum Fetched<K, V> {
    /// The store holds an entry of the current generation under the key's hash: its key (to
    /// compare with the one asked: hashes may collide), value and stamp (the hash of the
    /// value's encoding, as the dependency graph records it).
    Found(K, V, u64),
    /// No value; this caller now holds the key's lease and computes.
    Leased(Ticket),
    /// No value, and another caller (on this host or another) holds the lease: wait for its
    /// value, or for the lease to expire.
    Held(Ticket),
    /// The store could not be asked (down, slow, refused): compute without it. Already
    /// logged and counted.
    Unavailable,
}

/// Entries read and written one by one on a store other hosts share.
///
/// Entries are found by the stable hash of their key (`deps::stable_hash`, which a borrowed
/// form of the key and a `#[cached]` probe give too, so `get(&str)` and `remove(&str)` reach
/// them) and stored with their key, which the caller compares: a collision is a miss.
///
/// Every operation is one round trip and none returns an error: a failure is logged with the
/// cache and server, counted ([`errors`](Self::errors)), and the caller goes on as if the
/// store had nothing (a computed value is still returned; nothing stale is ever served).
pub(crate) trait SharedEntries<K, V>: Send + Sync {
    /// Hands the store what to call when another host invalidates the cache (or when the
    /// store can no longer tell whether one did): it drops the cache's local copy. The store
    /// keeps it for the cache's life and never calls up otherwise.
    fn watch(&self, on_remote_invalidation: Box<dyn Fn() + Send + Sync>);
    /// Whether the cache may keep values in its memory for hits now: the user asked for a
    /// local copy and remote invalidations are being heard.
    fn local_copy(&self) -> bool;
    /// The entry under `hash` in the current generation; or, with `lease`, takes that
    /// hash's lease when there is no entry and no lease, in the same round trip.
    fn fetch(&self, hash: u64, lease: bool) -> Fetched<K, V>;
    /// Stores `value` if `ticket`'s generation and version are still current, and lets its
    /// lease go. `inputs` are the entries the computation read: each on this store's server
    /// records the entry among its readers first, and if one no longer has the stamp that
    /// was read, the value is not stored (the lease is let go).
    fn put(&self, key: &K, value: &V, ticket: &Ticket, inputs: &[Input]);
    /// Lets a lease go without a value (the computation failed or was abandoned), so that a
    /// waiting host takes over at once rather than after the lease expires.
    fn release(&self, hash: u64, ticket: &Ticket);
    /// Stores `value` in the current generation (an `insert`).
    fn put_current(&self, key: &K, value: &V);
    /// Removes the entry under `hash` from the current generation (a `remove`).
    fn remove(&self, hash: u64);
    /// Invalidates the entry under `hash` for every host: removes it, makes a computation of
    /// it that started before not land, and does the same, transitively, to the entries
    /// recorded on the store as having read it.
    fn invalidate_entry(&self, hash: u64);
    /// How long a caller waits for another caller's lease before computing itself (`None`:
    /// as long as the lease is held; its holder renews it while it computes).
    fn wait_bound(&self) -> Option<Duration>;
    /// How many operations failed since the store was made (`CacheStats::store_errors`).
    fn errors(&self) -> u64;
}
