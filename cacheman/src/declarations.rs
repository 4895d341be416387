//! Caches declared by `#[cached]` functions: collected at startup with `inventory`, applied to
//! a manager when it is created, and checked (unknown dependencies, duplicate names, cycles).

use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::deps::DependencyGraph;
use crate::{Cache, CacheManager, CacheOptions, Error};

/// What one `#[cached]` function declares. Built by the macro as a constant; not a stable API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Declaration {
    /// The cache name.
    pub cache: &'static str,
    /// The manager name.
    pub manager: &'static str,
    /// Names of the caches this one is derived from.
    pub depends_on: &'static [&'static str],
    /// `module::path::function`, for messages.
    pub function: &'static str,
    /// `file:line` of the attribute, for messages (methods of two types share a path).
    pub location: &'static str,
    /// The key type as written, for messages.
    pub key_type: &'static str,
    /// The value type as written, for messages.
    pub value_type: &'static str,
    /// `TypeId::of` the key type, so that a registration by name with other types is refused
    /// before the function is first called.
    pub key_type_id: fn() -> TypeId,
    /// `TypeId::of` the value type.
    pub value_type_id: fn() -> TypeId,
    /// Hash of the function's signature and body (and `version`).
    pub fn_fingerprint: u64,
    /// Whether the cache is saved to a file.
    pub persistent: bool,
    /// Bound on the number of entries.
    pub capacity: Option<usize>,
    /// Time-to-live of entries, in seconds.
    pub ttl_secs: Option<u64>,
    /// Whether a hit restarts the time-to-live.
    pub refresh: bool,
    /// Whether expired entries are kept as fallbacks (`result_fallback`).
    pub keep_expired: bool,
    /// Opens the cache as a [`TypedView`](crate::inspect::TypedView), for the embedded
    /// `cacheman` commands (persistent caches only: their types are serde's).
    pub view: Option<OpenView>,
    /// `store = "redis"`: the cache lives on the server named by `CACHEMAN_REDIS_URL`.
    pub redis: bool,
}

/// How a declaration opens its cache as a typed view (see [`ViewOf`]).
#[doc(hidden)]
pub type OpenView = fn(&Declaration) -> Result<Box<dyn crate::inspect::TypedView>, Error>;

inventory::collect!(Declaration);

impl Declaration {
    fn options(&self) -> CacheOptions {
        let mut options = CacheOptions::new()
            .persistent(self.persistent)
            .fn_fingerprint(self.fn_fingerprint);
        if let Some(capacity) = self.capacity {
            options = options.capacity(capacity);
        }
        if let Some(secs) = self.ttl_secs {
            options = options.ttl(Duration::from_secs(secs));
        }
        options
            .refresh(self.refresh)
            .keep_expired(self.keep_expired)
    }
}

/// Every declaration of manager `manager` in this binary.
fn declarations_of(manager: &str) -> impl Iterator<Item = &'static Declaration> + '_ {
    inventory::iter::<Declaration>
        .into_iter()
        .filter(move |d| d.manager == manager)
}

/// Refuses to register cache `cache` of manager `manager` with `K -> V` when a `#[cached]`
/// function declares it with other types: the function would otherwise find a cache of the
/// wrong types at its first call.
pub(crate) fn check_declared_types<K: 'static, V: 'static>(
    manager: &str,
    cache: &str,
) -> Result<(), Error> {
    let mut declared = declarations_of(manager)
        .filter(|d| d.cache == cache)
        .peekable();
    let Some(first) = declared.peek().copied() else {
        return Ok(());
    };
    let (key, value) = (TypeId::of::<K>(), TypeId::of::<V>());
    if declared.any(|d| (d.key_type_id)() == key && (d.value_type_id)() == value) {
        return Ok(());
    }
    Err(Error::TypeMismatch {
        cache: cache.to_owned(),
        registered_key: first.key_type,
        registered_value: first.value_type,
        requested_key: std::any::type_name::<K>(),
        requested_value: std::any::type_name::<V>(),
    })
}

/// Records the declared names and edges of `manager`, so that invalidation finds declared
/// dependents before their functions are first called. Problems are left for
/// [`CacheManager::check_declarations`]: an edge that would close a cycle is skipped here.
pub(crate) fn apply(manager: &CacheManager) {
    for decl in declarations_of(manager.name()) {
        // Known from the start, so that invalidation finds their files before they are used.
        manager
            .shared
            .entries
            .declare(decl.cache, decl.fn_fingerprint, decl.persistent);
        for dependency in decl.depends_on {
            // A refused edge (a cycle, a bad name) is reported by `check_declarations`.
            let _ = manager.register_dependent_cache(dependency, decl.cache);
        }
    }
}

/// One problem found among the declarations of a manager, with the caches it involves.
struct Problem {
    involves: Vec<&'static str>,
    error: Error,
}

/// Every problem among the declarations of `manager`, in a stable order.
fn problems(manager: &CacheManager) -> Vec<Problem> {
    let declared: Vec<&'static Declaration> = declarations_of(manager.name()).collect();
    let mut problems = Vec::new();

    let mut by_name: BTreeMap<&str, Vec<&Declaration>> = BTreeMap::new();
    for decl in &declared {
        by_name.entry(decl.cache).or_default().push(decl);
    }
    for (cache, decls) in &by_name {
        if decls.len() > 1 {
            let mut functions: Vec<String> = decls
                .iter()
                .map(|d| format!("{} at {}", d.function, d.location))
                .collect();
            functions.sort();
            problems.push(Problem {
                involves: vec![decls[0].cache],
                error: Error::DuplicateDeclaration {
                    manager: manager.name().to_owned(),
                    cache: (*cache).to_owned(),
                    functions,
                },
            });
        }
    }

    let registered = manager.cache_names();
    let mut known: BTreeSet<&str> = by_name.keys().copied().collect();
    known.extend(registered.iter().map(String::as_str));
    for decl in &declared {
        for dependency in decl.depends_on {
            if !known.contains(dependency) {
                problems.push(Problem {
                    involves: vec![decl.cache],
                    error: Error::UnknownDependency {
                        manager: manager.name().to_owned(),
                        cache: decl.cache.to_owned(),
                        function: decl.function.to_owned(),
                        dependency: (*dependency).to_owned(),
                        suggestion: closest(dependency, known.iter().copied())
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default(),
                    },
                });
            }
        }
    }

    // Cycles among the declared edges alone, in a graph of their own.
    let mut graph = DependencyGraph::default();
    for decl in &declared {
        for dependency in decl.depends_on {
            if let Err(path) = graph.add_edge(dependency, decl.cache) {
                let involves = path
                    .iter()
                    .filter_map(|n| by_name.get_key_value(n.as_str()).map(|(k, _)| *k))
                    .collect();
                problems.push(Problem {
                    involves,
                    error: Error::DependencyCycle {
                        manager: manager.name().to_owned(),
                        path,
                    },
                });
            }
        }
    }
    problems
}

/// The known name closest to `name` by edit distance, if it is close enough to be a typo.
fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

impl CacheManager {
    /// Checks the caches that `#[cached]` functions declare for this manager: each
    /// `depends_on` names a cache that is declared or registered, no two functions declare one
    /// name, and the declared dependencies have no cycle. Returns the first problem found.
    ///
    /// A `#[cached]` function runs the checks that concern its own cache at its first call,
    /// and panics with the error's message if one fails (its signature cannot return it); call
    /// this at startup, or in a test, to see every problem as an `Error` instead.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// manager.check_declarations().unwrap(); // no `#[cached]` function declares for "docs"
    /// ```
    pub fn check_declarations(&self) -> Result<(), Error> {
        match problems(self).into_iter().next() {
            Some(problem) => Err(problem.error),
            None => Ok(()),
        }
    }

    /// The names of the caches that `#[cached]` functions declare for this manager, sorted.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let manager = cacheman::CacheManager::new("docs", dir.path());
    /// assert!(manager.declared_cache_names().is_empty());
    /// ```
    pub fn declared_cache_names(&self) -> Vec<String> {
        let names: BTreeSet<&str> = declarations_of(self.name()).map(|d| d.cache).collect();
        names.into_iter().map(str::to_owned).collect()
    }

    /// The first problem that involves the cache `decl` declares.
    fn check_one(&self, decl: &Declaration) -> Result<(), Error> {
        match problems(self)
            .into_iter()
            .find(|p| p.involves.contains(&decl.cache))
        {
            Some(problem) => Err(problem.error),
            None => Ok(()),
        }
    }

    /// The cache of `decl`, registered with its options unless it already is.
    fn open_declared<K, V>(
        &self,
        decl: &Declaration,
        register: impl Fn(&CacheManager, &str, CacheOptions) -> Result<Cache<K, V>, Error>,
    ) -> Result<Cache<K, V>, Error>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.check_one(decl)?;
        loop {
            match self.registered_cache(decl.cache) {
                Err(Error::CacheNotFound { .. }) => {}
                found => return found,
            }
            match register(self, decl.cache, decl.options()) {
                // Another thread registered it between our look and our registration.
                Err(Error::AlreadyRegistered { .. }) => continue,
                registered => return registered,
            }
        }
    }
}

/// A key or value type that a persistent `#[cached]` function can save: serde's `Serialize`
/// and `Deserialize`. Its own trait only so that a type without them gets a message that says
/// what to do.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be saved to a cache file: it does not implement serde's \
               `Serialize` and `Deserialize`",
    label = "a persistent #[cached] function saves this type",
    note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]` on the type \
            (or use a type that has them)",
    note = "or keep the cache in memory only: `#[cached(persistent = false)]`"
)]
pub trait Persistable: Serialize + DeserializeOwned {}

impl<T: Serialize + DeserializeOwned> Persistable for T {}

/// Opens the persistent cache of a `#[cached]` function at its first call.
///
/// # Panics
///
/// With the error's message, if the declaration fails its checks or the cache cannot be
/// registered: the function's signature has no room for the error.
#[doc(hidden)]
pub fn open_persistent<K, V>(decl: &Declaration) -> Cache<K, V>
where
    K: Hash + Eq + Clone + Persistable + Send + Sync + 'static,
    V: Clone + Persistable + Send + Sync + 'static,
{
    let manager = crate::get_cache_manager_named(decl.manager);
    let opened = manager.open_declared(decl, |m, name, options| {
        m.register_custom_cache(name, with_store(decl, options)?)
    });
    opened.unwrap_or_else(|err| fail(decl, err))
}

/// The key and value types of a `#[cached]` function, for choosing how its declaration opens
/// a typed view: [`ViaSerde`] when both are serde types, else [`ViaNothing`] (autoref
/// specialization: the generated code calls `(&ViewOf::<K, V>::NEW).open_view(decl)` with the
/// concrete types, so a type without serde gets no second error here; the cache's opening
/// reports it once).
#[doc(hidden)]
pub struct ViewOf<K, V>(std::marker::PhantomData<fn() -> (K, V)>);

impl<K, V> ViewOf<K, V> {
    #[doc(hidden)]
    pub const NEW: Self = ViewOf(std::marker::PhantomData);
}

/// See [`ViewOf`].
#[doc(hidden)]
pub trait ViaSerde {
    fn open_view(&self, decl: &Declaration) -> Result<Box<dyn crate::inspect::TypedView>, Error>;
}

impl<K, V> ViaSerde for ViewOf<K, V>
where
    K: Hash + Eq + Clone + Persistable + Send + Sync + 'static,
    V: Clone + Persistable + Send + Sync + 'static,
{
    fn open_view(&self, decl: &Declaration) -> Result<Box<dyn crate::inspect::TypedView>, Error> {
        let manager = crate::get_cache_manager_named(decl.manager);
        let cache: Cache<K, V> = manager.open_declared(decl, |m, name, options| {
            m.register_custom_cache(name, options)
        })?;
        Ok(Box::new(cache))
    }
}

/// See [`ViewOf`].
#[doc(hidden)]
pub trait ViaNothing {
    fn open_view(&self, decl: &Declaration) -> Result<Box<dyn crate::inspect::TypedView>, Error>;
}

impl<K, V> ViaNothing for &ViewOf<K, V> {
    fn open_view(&self, decl: &Declaration) -> Result<Box<dyn crate::inspect::TypedView>, Error> {
        Err(Error::InvalidOptions {
            cache: decl.cache.to_owned(),
            reason: "its key or value type has no serde implementation".into(),
        })
    }
}

/// The options of a `store = "redis"` declaration name the server of `CACHEMAN_REDIS_URL`.
fn with_store(decl: &Declaration, options: CacheOptions) -> Result<CacheOptions, Error> {
    if !decl.redis {
        return Ok(options);
    }
    #[cfg(feature = "redis")]
    match crate::Redis::from_env() {
        Ok(redis) => Ok(options.redis(redis)),
        Err(Error::InvalidOptions { reason, .. }) => Err(Error::InvalidOptions {
            cache: decl.cache.to_owned(),
            reason,
        }),
        Err(other) => Err(other),
    }
    // Not reachable: the expansion's `redis_store_available` check fails to compile.
    #[cfg(not(feature = "redis"))]
    Err(Error::InvalidOptions {
        cache: decl.cache.to_owned(),
        reason: "`store = \"redis\"` needs cacheman's `redis` feature".into(),
    })
}

/// Compiles only with cacheman's `redis` feature: `#[cached(store = "redis")]` evaluates it
/// in a `const`, so that a missing feature is an error at the attribute, not at run time.
#[doc(hidden)]
pub const fn redis_store_available() {
    #[cfg(not(feature = "redis"))]
    panic!(
        "#[cached(store = \"redis\")] needs cacheman's `redis` feature: \
         add features = [\"redis\"] to cacheman in Cargo.toml"
    );
}

/// Opens the in-memory cache of a `#[cached(persistent = false)]` function at its first call.
///
/// # Panics
///
/// As [`open_persistent`].
#[doc(hidden)]
pub fn open_memory<K, V>(decl: &Declaration) -> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let manager = crate::get_cache_manager_named(decl.manager);
    let opened = manager.open_declared(decl, |m, name, options| {
        m.register_memory_cache(name, options)
    });
    opened.unwrap_or_else(|err| fail(decl, err))
}

fn fail(decl: &Declaration, err: Error) -> ! {
    panic!(
        "#[cached] function `{}` (cache `{}` of manager `{}`, {} -> {}): {err}",
        decl.function, decl.cache, decl.manager, decl.key_type, decl.value_type
    )
}

/// Fails compilation when a `depends_on` path names a function of another manager.
#[doc(hidden)]
pub const fn assert_same_manager(dependency: &Declaration, manager: &str) {
    let (a, b) = (dependency.manager.as_bytes(), manager.as_bytes());
    let mut same = a.len() == b.len();
    let mut i = 0;
    while same && i < a.len() {
        same = a[i] == b[i];
        i += 1;
    }
    if !same {
        panic!(
            "`depends_on` names a #[cached] function of another manager; dependency edges \
             join caches of one manager: give both functions the same `manager = \"...\"`"
        );
    }
}

/// Fixes the output type of an async block, so that `?` inside it knows its error type.
#[doc(hidden)]
pub fn typed_future<T, F: Future<Output = T>>(future: F) -> F {
    future
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("root", "root"), 0);
        assert_eq!(edit_distance("roto", "root"), 2);
        assert_eq!(edit_distance("rot", "root"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn closest_suggests_only_near_names() {
        let known = ["root", "edge", "report"];
        assert_eq!(closest("rooot", known.iter().copied()), Some("root"));
        assert_eq!(closest("zzzzzz", known.iter().copied()), None);
    }
}
