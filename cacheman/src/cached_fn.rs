//! The runtime side of a `#[cached]` function: lookups by the call's borrowed arguments (no
//! owned key is built on a hit), the miss path, `<fn>_refresh` and `<fn>_peek`, and
//! [`Return`], the value with its was-it-cached flag.

use std::future::Future;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;

use crate::cache::{Cache, CacheInner, Found, on_maps};
use crate::query::Probe;
use crate::shards::Lookup;

/// The value of a `#[cached(with_cached_flag)]` function, and whether it came from the cache.
///
/// The function declares `-> Return<T>` (or `Result<Return<T>, E>` with `result`,
/// `Option<Return<T>>` with `option`); its body returns [`Return::new`]`(value)`, the cache
/// stores the `T`, and each call says whether its body ran. `Return<T>` dereferences to `T`.
///
/// ```
/// use cacheman::{Return, cached};
///
/// #[cached(persistent = false, with_cached_flag)]
/// fn lookup_user(id: u32) -> Return<String> {
///     Return::new(format!("user {id}"))
/// }
///
/// let first = lookup_user(7);
/// assert!(!first.was_cached);
/// let second = lookup_user(7);
/// assert!(second.was_cached);
/// assert_eq!(*second, "user 7");
/// assert_eq!(second.into_inner(), "user 7");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Return<T> {
    /// The value.
    pub value: T,
    /// `true` when this call did not run the function's body: the value was in the cache, or
    /// another caller of the same arguments computed it meanwhile.
    pub was_cached: bool,
}

impl<T> Return<T> {
    /// A freshly computed value (`was_cached: false`): what the function's body returns.
    ///
    /// ```
    /// let fresh = cacheman::Return::new(3);
    /// assert!(!fresh.was_cached);
    /// ```
    pub fn new(value: T) -> Self {
        Return {
            value,
            was_cached: false,
        }
    }

    /// The value, without the flag.
    ///
    /// ```
    /// assert_eq!(cacheman::Return::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Return<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Return<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// The value of the key that `view` and `eq` describe (`view` must hash as the key does; see
/// `query::Probe`). With `count`, a hit or a miss is counted (a call); without, nothing is
/// (`<fn>_peek`).
#[doc(hidden)]
#[inline]
pub fn lookup<K, V, Q, F>(cache: &Cache<K, V>, count: bool, view: &Q, eq: F) -> Option<V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Q: Hash + ?Sized,
    F: Fn(&K) -> bool,
{
    let probe = Probe { view, eq };
    if count {
        // The probe is moved, not lent, to the paths out of line: lent, it would be built
        // on the stack on every hit.
        return match cache.inner.find_counted(&probe) {
            Found::Hit(value) => Some(value),
            Found::Recording(value) => Some(read_in_computation(&cache.inner, probe, value)),
            Found::Missing => missed(&cache.inner, probe),
        };
    }
    match on_maps!(cache.inner, s, now => s.get(&probe, now)) {
        Lookup::Hit(value) => Some(value),
        Lookup::Miss => None,
    }
}

/// The counted lookup of an async `#[cached]` call: as [`lookup`], but a key the map misses
/// on a shared store is fetched on the offload pool: the caller awaits the
/// [`Looked::Fetch`](crate::cache_shared_async::Looked) and hands what it found to [`land`]
/// with the same view, so that nothing borrowed from the arguments is held across the wait.
#[doc(hidden)]
pub fn lookup_or_fetch<K, V, Q, F>(
    cache: &Cache<K, V>,
    view: &Q,
    eq: F,
) -> crate::cache_shared_async::Looked<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Q: Hash + ?Sized,
    F: Fn(&K) -> bool,
{
    use crate::cache_shared_async::Looked;
    let probe = Probe { view, eq };
    match cache.inner.find_counted(&probe) {
        Found::Hit(value) => Looked::Done(Some(value)),
        Found::Recording(value) => {
            Looked::Done(Some(read_in_computation(&cache.inner, probe, value)))
        }
        Found::Missing => missed_or_fetch(&cache.inner, probe),
    }
}

/// [`CacheInner::missed_or_fetch`] for a probe (moved out of line, as in [`lookup`]).
#[cold]
#[inline(never)]
fn missed_or_fetch<K, V, Q, F>(
    inner: &std::sync::Arc<CacheInner<K, V>>,
    probe: Probe<'_, Q, F>,
) -> crate::cache_shared_async::Looked<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Q: Hash + ?Sized,
    F: Fn(&K) -> bool,
{
    inner.missed_or_fetch(&probe)
}

/// What [`lookup_or_fetch`]'s fetch found, for the key `view` and `eq` describe.
#[doc(hidden)]
pub fn land<K, V, Q, F>(
    cache: &Cache<K, V>,
    landing: crate::cache_shared_async::Landing<K, V>,
    view: &Q,
    eq: F,
) -> Option<V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Q: Hash + ?Sized,
    F: Fn(&K) -> bool,
{
    cache.inner.land(&Probe { view, eq }, landing)
}

/// [`CacheInner::read_in_computation`] for a probe.
#[cold]
#[inline(never)]
fn read_in_computation<K, V, Q, F>(inner: &CacheInner<K, V>, probe: Probe<'_, Q, F>, first: V) -> V
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Q: Hash + ?Sized,
    F: Fn(&K) -> bool,
{
    inner.read_in_computation(&probe, first)
}

/// [`CacheInner::missed`] for a probe.
#[cold]
#[inline(never)]
fn missed<K, V, Q, F>(inner: &CacheInner<K, V>, probe: Probe<'_, Q, F>) -> Option<V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Q: Hash + ?Sized,
    F: Fn(&K) -> bool,
{
    inner.missed(&probe)
}

/// Runs the computation of a `#[cached]` call for `key` and stores its value. On a miss
/// (`refresh: false`) it goes through the key's single flight, so concurrent callers wait for
/// one run. For `<fn>_refresh` (`refresh: true`) it runs whatever the cache holds: an `Err`
/// stores nothing and leaves what the cache held, and a value computed while the cache was
/// invalidated is returned but not stored, as on a miss.
#[doc(hidden)]
pub fn compute<K, V, E>(
    cache: &Cache<K, V>,
    key: K,
    refresh: bool,
    compute: impl FnOnce() -> Result<V, E>,
) -> Result<V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    if !refresh {
        return cache.compute_missing(key, compute);
    }
    let epoch = (
        cache.inner.epoch.load(Ordering::Acquire),
        cache.inner.generation(),
    );
    let frame = cache.inner.frame().map(crate::deps::Frame::open);
    let value = compute()?;
    let inputs = frame.map(|open| open.close().into_inputs());
    store_unless_invalidated(cache, key, &value, epoch, inputs);
    Ok(value)
}

/// The async form of [`compute`].
#[doc(hidden)]
pub async fn compute_async<K, V, E, F, Fut>(
    cache: &Cache<K, V>,
    key: K,
    refresh: bool,
    compute: F,
) -> Result<V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<V, E>>,
{
    if !refresh {
        return cache.compute_missing_async(key, compute).await;
    }
    let epoch = (
        cache.inner.epoch.load(Ordering::Acquire),
        cache.inner.generation(),
    );
    let (value, inputs) = match cache.inner.frame() {
        Some(frame) => {
            let (value, frame) = crate::deps::Recording::new(frame, compute()).await;
            (value?, Some(frame.into_inputs()))
        }
        None => (compute().await?, None),
    };
    store_unless_invalidated(cache, key, &value, epoch, inputs);
    Ok(value)
}

/// The miss path of a `result_fallback` function: as [`compute`], and when the computation
/// fails, the expired value still held is served instead of the error.
#[doc(hidden)]
pub fn compute_or_fall_back<K, V, E>(
    cache: &Cache<K, V>,
    key: K,
    compute: impl FnOnce() -> Result<V, E>,
) -> Result<V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    cache.get_or_try_insert_with_fallback(key, compute)
}

/// The async form of [`compute_or_fall_back`].
#[doc(hidden)]
pub async fn compute_or_fall_back_async<K, V, E, F, Fut>(
    cache: &Cache<K, V>,
    key: K,
    compute: F,
) -> Result<V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<V, E>>,
{
    cache
        .get_or_try_insert_with_fallback_async(key, compute)
        .await
}

/// Stores a refreshed value with what its computation read, unless the cache was
/// invalidated meanwhile.
fn store_unless_invalidated<K, V>(
    cache: &Cache<K, V>,
    key: K,
    value: &V,
    epoch: (u64, u64),
    inputs: Option<Vec<crate::deps::Input>>,
) where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    cache.inner.refreshed(key, value, inputs, epoch);
}
