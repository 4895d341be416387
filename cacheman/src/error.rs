//! The one error type of the crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// The error a user-supplied hook (saver, loader, deleter, builder) may return.
///
/// Any error type converts into it with `?` or `.into()`.
///
/// ```
/// use cacheman::HookError;
///
/// fn parse(text: &str) -> Result<u32, HookError> {
///     Ok(text.trim().parse::<u32>()?)
/// }
/// assert_eq!(parse(" 7 ").unwrap(), 7);
/// assert!(parse("seven").is_err());
/// ```
pub type HookError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in cacheman.
///
/// Each message says what failed, on which cache (and manager or path where there is one), and what
/// to do about it.
///
/// ```
/// use cacheman::{CacheManager, Error};
///
/// let dir = tempfile::tempdir().unwrap();
/// let manager = CacheManager::new("docs", dir.path());
/// match manager.save_cache_contents("never_registered") {
///     Err(Error::CacheNotFound { cache, .. }) => assert_eq!(cache, "never_registered"),
///     other => panic!("unexpected: {other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No cache of that name is registered with the manager.
    #[error(
        "no cache named `{cache}` is registered with manager `{manager}`; \
         register it first (`register_cache`, `register_custom_cache` or `retrieve_cache`)"
    )]
    CacheNotFound {
        /// The manager asked.
        manager: String,
        /// The cache name asked for.
        cache: String,
    },

    /// A cache of that name is already registered with the manager.
    #[error(
        "a cache named `{cache}` is already registered with manager `{manager}`; \
         use `retrieve_cache` to get it, or `deregister_cache` first to replace it"
    )]
    AlreadyRegistered {
        /// The manager asked.
        manager: String,
        /// The cache name.
        cache: String,
    },

    /// The cache exists with other key or value types than the ones asked for.
    #[error(
        "cache `{cache}` holds `{registered_key}` -> `{registered_value}`, \
         but `{requested_key}` -> `{requested_value}` was asked for; \
         use the registered types or another cache name"
    )]
    TypeMismatch {
        /// The cache name.
        cache: String,
        /// Key type the cache was registered with.
        registered_key: &'static str,
        /// Value type the cache was registered with.
        registered_value: &'static str,
        /// Key type of the request.
        requested_key: &'static str,
        /// Value type of the request.
        requested_value: &'static str,
    },

    /// Adding a dependency edge would close a cycle.
    #[error(
        "dependency cycle in manager `{manager}`: {}; \
         a cache cannot (even indirectly) depend on itself, remove one of these edges",
        CyclePath(path)
    )]
    DependencyCycle {
        /// The manager the edge was declared on.
        manager: String,
        /// The cycle, starting and ending with the same cache name.
        path: Vec<String>,
    },

    /// A cache or manager name that could not be used as a file name.
    #[error("invalid {kind} name {name:?}: {reason}; {}", crate::names::NAME_RULE)]
    InvalidName {
        /// `"cache"` or `"manager"`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A global manager of that name is already installed.
    #[error(
        "a global cache manager named `{manager}` is already in use; \
         install yours before the first `get_cache_manager_named(\"{manager}\")`, or pick another name"
    )]
    ManagerInUse {
        /// The manager name.
        manager: String,
    },

    /// Options that contradict each other or the cache's types.
    #[error("invalid options for cache `{cache}`: {reason}")]
    InvalidOptions {
        /// The cache name.
        cache: String,
        /// What is wrong, and what to do.
        reason: String,
    },

    /// Reading, writing, renaming or removing a cache file failed.
    #[error("could not {action} for cache `{cache}` at {path}: {source}")]
    Io {
        /// The cache name.
        cache: String,
        /// What was being done, e.g. `"write the cache file"`.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The cache file is damaged: truncated, bit-flipped or otherwise not a whole cacheman file.
    #[error(
        "cache file of `{cache}` at {path} is corrupt ({reason}); it was not loaded and is left \
         as it is until the next save replaces it"
    )]
    Corrupt {
        /// The cache name.
        cache: String,
        /// The file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },

    /// The cache file is whole but was written for other types, another codec, another version
    /// of the cached function, or another format version.
    #[error(
        "cache file of `{cache}` at {path} was written for {reason}; it was not loaded \
         and the next save replaces it"
    )]
    Incompatible {
        /// The cache name.
        cache: String,
        /// The file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },

    /// Serializing or deserializing the contents failed.
    #[error("could not {action} the contents of cache `{cache}` as {codec}: {message}")]
    Codec {
        /// The cache name.
        cache: String,
        /// `"encode"` or `"decode"`.
        action: &'static str,
        /// The codec's name.
        codec: &'static str,
        /// The codec's own message.
        message: String,
    },

    /// A user-supplied hook returned an error.
    #[error("the {hook} of cache `{cache}` failed: {source}")]
    Hook {
        /// The cache name.
        cache: String,
        /// Which hook: `"saver"`, `"loader"`, `"deleter"` or `"builder"`.
        hook: &'static str,
        /// The hook's error.
        #[source]
        source: HookError,
    },

    /// A `#[cached]` function's `depends_on` names a cache that no function declares and the
    /// manager has not registered.
    #[error(
        "cache `{cache}` of manager `{manager}` (declared by `{function}`) depends on \
         `{dependency}`, which no `#[cached]` function declares and nobody registered{suggestion}; \
         fix the name, or register `{dependency}` before the first call"
    )]
    UnknownDependency {
        /// The manager of the declaration.
        manager: String,
        /// The declared cache.
        cache: String,
        /// The function that declared it.
        function: String,
        /// The unknown name.
        dependency: String,
        /// `"; did you mean `x`?"`, or empty.
        suggestion: String,
    },

    /// Two `#[cached]` functions declare the same cache name in one manager.
    #[error(
        "cache `{cache}` of manager `{manager}` is declared by more than one function ({}); \
         give each its own `name = \"...\"` or `manager = \"...\"`",
        functions.join(", ")
    )]
    DuplicateDeclaration {
        /// The manager.
        manager: String,
        /// The cache name declared twice.
        cache: String,
        /// The declaring functions, as `path at file:line`, sorted.
        functions: Vec<String>,
    },

    /// A thread asked for a key that it is itself computing, from inside the computation.
    #[error(
        "re-entrant computation of one key in cache `{cache}`: the closure computing a key asked \
         for that same key, which would wait on itself forever; break the recursion"
    )]
    Reentrant {
        /// The cache name.
        cache: String,
    },

    /// The Redis server of a shared cache failed an operation that must reach it (an
    /// invalidation). Lookups and computations never fail this way: they compute without the
    /// server and count the failure in [`CacheStats::store_errors`](crate::CacheStats).
    #[error(
        "could not {action} of cache `{cache}` on the Redis server {server}: {message}; check          that the server runs and is reachable from here, then do it again"
    )]
    Redis {
        /// The cache name.
        cache: String,
        /// The server's URL, without a password.
        server: String,
        /// What failed.
        action: &'static str,
        /// The client's message.
        message: String,
    },
}

/// Displays a cycle as `a -> b -> a`.
struct CyclePath<'a>(&'a [String]);

impl fmt::Display for CyclePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            write!(f, "`{name}`")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_message_shows_the_path() {
        let err = Error::DependencyCycle {
            manager: "m".into(),
            path: vec!["a".into(), "b".into(), "a".into()],
        };
        let text = err.to_string();
        assert!(text.contains("`a` -> `b` -> `a`"), "{text}");
    }
}
