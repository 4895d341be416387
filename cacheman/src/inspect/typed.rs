//! Views of a cache that know its types: what the `cacheman` command shows of entries when a
//! program embeds it (`show`, `export`, `why`). Keys and values are rendered as JSON through
//! their `Serialize`, and a key typed on the command line is read back through `Deserialize`.

use std::hash::Hash;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Cache, Explanation};

/// A cache seen through its key and value types, type-erased: what the embedded `cacheman`
/// commands read entries through. Every persistent [`Cache`] is one; `#[cached]` functions
/// provide theirs to `cli::run` (feature `cli`) through their declarations.
///
/// ```
/// use cacheman::inspect::TypedView;
/// # let dir = tempfile::tempdir().unwrap();
/// let manager = cacheman::CacheManager::new("app", dir.path());
/// let cache = manager.register_cache::<String, u32>("lengths").unwrap();
/// cache.insert("four".into(), 4);
/// let view: &dyn TypedView = &cache;
/// assert_eq!(view.rows(), vec![(serde_json::json!("four"), serde_json::json!(4))]);
/// assert_eq!(view.get(&serde_json::json!("four")).unwrap(), Some(serde_json::json!(4)));
/// assert!(view.get(&serde_json::json!(17)).is_err()); // not a key of this type
/// ```
pub trait TypedView: Send + Sync {
    /// The cache's name.
    fn name(&self) -> &str;
    /// The key and value types, as Rust names them.
    fn types(&self) -> (&'static str, &'static str);
    /// Every entry held, key and value as JSON, in key order of their JSON text.
    fn rows(&self) -> Vec<(Value, Value)>;
    /// The value of the key written as `key` in JSON. `Err`: `key` is not a key of this
    /// cache's type (the reason).
    fn get(&self, key: &Value) -> Result<Option<Value>, String>;
    /// What the dependency graph records of the key written as `key` (see
    /// [`Cache::explain`]).
    fn explain(&self, key: &Value) -> Result<Explanation, String>;
}

fn to_json<T: Serialize>(value: &T) -> Value {
    // A value that serde_json cannot represent (a map with non-string keys, say) is shown
    // as the reason rather than hidden.
    serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("<not JSON: {e}>")))
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Clone + Serialize + Send + Sync + 'static,
{
    fn key_of(&self, key: &Value) -> Result<K, String> {
        K::deserialize(key).map_err(|e| {
            format!(
                "`{key}` is not a key of cache `{}` ({}): {e}",
                self.name(),
                std::any::type_name::<K>()
            )
        })
    }
}

impl<K, V> TypedView for Cache<K, V>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Clone + Serialize + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        Cache::name(self)
    }

    fn types(&self) -> (&'static str, &'static str) {
        (std::any::type_name::<K>(), std::any::type_name::<V>())
    }

    fn rows(&self) -> Vec<(Value, Value)> {
        let mut rows: Vec<(Value, Value)> = self
            .snapshot()
            .into_iter()
            .map(|(k, v)| (to_json(&k), to_json(&v)))
            .collect();
        rows.sort_by_cached_key(|(k, _)| k.to_string());
        rows
    }

    fn get(&self, key: &Value) -> Result<Option<Value>, String> {
        let key = self.key_of(key)?;
        // From a copy, not a lookup: looking does not count as a hit or a miss.
        Ok(self.snapshot().get(&key).map(to_json))
    }

    fn explain(&self, key: &Value) -> Result<Explanation, String> {
        let key = self.key_of(key)?;
        Ok(Cache::explain(self, &key))
    }
}
