//! Invalidating several caches in one step on the server: the generation keys of the caches
//! of this process by manager and cache name, and the bump of a whole dependent set in one
//! script (atomic, so no host ever sees a cache invalidated and its dependent not yet).
//!
//! On a Cluster each cache's keys are in its own slot and one script cannot span slots: the
//! caches are bumped one script each, in the order given (the manager puts every cache after
//! those it depends on): the invalidated cache first, then its dependents. Until
//! the last, a host may see the cache invalidated and a dependent not yet; a dependent value
//! computed meanwhile is put in the dependent's old generation, which the next bump leaves
//! behind. The other order would be worse: a dependent recomputed from the cache's old value
//! between the bumps would land in the dependent's new generation and stay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::Redis;
use super::scripts;
use super::server::Server;
use crate::Error;

/// Where one cache's generation lives.
pub(crate) struct Generation {
    pub(crate) server: Arc<Server>,
    pub(crate) key: String,
    pub(crate) channel: String,
    /// What the cache's entry keys start with, for a cache registered in this process (its
    /// fingerprints are known): how a computation that read its entries finds them.
    pub(crate) entries: Option<String>,
}

impl Generation {
    pub(crate) fn new(server: Arc<Server>, base: &str) -> Self {
        Generation {
            server,
            key: format!("{base}:gen"),
            channel: format!("{base}:inv"),
            entries: None,
        }
    }

    /// The generation of a cache registered in this process, whose entries start with
    /// `entries`.
    pub(crate) fn registered(server: Arc<Server>, base: &str, entries: String) -> Self {
        Generation {
            entries: Some(entries),
            ..Generation::new(server, base)
        }
    }
}

/// `{prefix}:{<manager>:<cache>}`: what every key of the cache starts with.
pub(crate) fn base(prefix: &str, manager: &str, cache: &str) -> String {
    format!("{prefix}:{{{manager}:{cache}}}")
}

type Registry = HashMap<(String, String), Vec<Weak<Generation>>>;

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REGISTRY: std::sync::LazyLock<Mutex<Registry>> =
        std::sync::LazyLock::new(Mutex::default);
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records a registered cache's generation (the store keeps the `Arc`).
pub(crate) fn register(manager: &str, cache: &str, generation: &Arc<Generation>) {
    let mut registry = registry();
    let list = registry
        .entry((manager.to_owned(), cache.to_owned()))
        .or_default();
    list.retain(|g| g.strong_count() > 0);
    list.push(Arc::downgrade(generation));
}

/// The registered cache of `manager` whose dependency-graph id is `id`, if one is on Redis in
/// this process on `server`. (Managers of one name on two servers in one process are two
/// sets of caches: a cache on another server is never taken for this one's.)
pub(crate) fn registered_by_id(
    manager: &str,
    id: u64,
    server: &Arc<Server>,
) -> Option<Arc<Generation>> {
    registry()
        .iter()
        .filter(|((m, cache), _)| m == manager && crate::deps::cache_id(cache) == id)
        .flat_map(|(_, list)| list.iter().filter_map(Weak::upgrade))
        .find(|generation| generation.entries.is_some() && Arc::ptr_eq(&generation.server, server))
}

/// Bumps the generations of `caches` of `manager` in one script per server: those registered
/// in this process on Redis, and (with `fallback`, the manager's server) the others, whose
/// stores live on that server in whatever process registers them. A set of one is left to the
/// cache's own invalidation.
pub(crate) fn bump_together(
    manager: &str,
    fallback: Option<&Redis>,
    caches: &[String],
) -> Result<(), Error> {
    if caches.len() < 2 {
        return Ok(());
    }
    let mut targets: Vec<Arc<Generation>> = Vec::new();
    let fallback_server = match fallback {
        Some(redis) => Server::shared(redis)
            .ok()
            .map(|s| (s, redis.prefix.clone())),
        None => None,
    };
    for cache in caches {
        let registered: Vec<Arc<Generation>> = registry()
            .get(&(manager.to_owned(), cache.clone()))
            .into_iter()
            .flatten()
            .filter_map(Weak::upgrade)
            .collect();
        if registered.is_empty() {
            if let Some((server, prefix)) = &fallback_server {
                let generation = Generation::new(server.clone(), &base(prefix, manager, cache));
                targets.push(Arc::new(generation));
            }
        } else {
            targets.extend(registered);
        }
    }
    // One script per server, each key once.
    let mut by_server: Vec<(Arc<Server>, Vec<Arc<Generation>>)> = Vec::new();
    for target in targets {
        match by_server
            .iter_mut()
            .find(|(s, _)| Arc::ptr_eq(s, &target.server))
        {
            Some((_, list)) if list.iter().any(|g| g.key == target.key) => {}
            Some((_, list)) => list.push(target),
            None => by_server.push((target.server.clone(), vec![target])),
        }
    }
    let mut first_error = None;
    for (server, generations) in by_server {
        if generations.len() < 2 {
            continue;
        }
        // One script for the set; on a Cluster one per cache (one slot each), in order.
        let steps = if server.is_cluster() {
            generations.chunks(1).collect::<Vec<_>>()
        } else {
            vec![generations.as_slice()]
        };
        for step in steps {
            if let Err(message) = bump(&server, step) {
                first_error.get_or_insert(Error::Redis {
                    cache: caches.join("`, `"),
                    server: server.name.clone(),
                    action: "invalidate the caches together",
                    message,
                });
                break; // the rest after a retry: the cache itself first again
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Bumps `generations` in one script and tells their channels.
fn bump(server: &Server, generations: &[Arc<Generation>]) -> Result<i64, String> {
    let mut invocation = scripts::INVALIDATE.prepare_invoke();
    for generation in generations {
        invocation.key(&generation.key);
    }
    for generation in generations {
        invocation.arg(&generation.channel);
    }
    server.run(|c| invocation.invoke::<i64>(c))
}
