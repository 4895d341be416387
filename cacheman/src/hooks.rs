//! The closures that replace a cache's default behaviour, as in CacheMan: savers, loaders,
//! deleters, validators, builders, and the processors that transform contents on the way to
//! and from storage.
//!
//! Hooks see the whole contents as a [`Contents`] map, as CacheMan's hooks see the dict.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::HookError;

/// The whole contents of a cache, as hooks see them.
pub type Contents<K, V> = HashMap<K, V>;

pub(crate) type Saver<K, V> =
    Arc<dyn Fn(&str, &Contents<K, V>) -> Result<(), HookError> + Send + Sync>;
pub(crate) type Loader<K, V> =
    Arc<dyn Fn(&str) -> Result<Option<Contents<K, V>>, HookError> + Send + Sync>;
pub(crate) type Deleter = Arc<dyn Fn(&str) -> Result<(), HookError> + Send + Sync>;
pub(crate) type Validator<K, V> = Arc<dyn Fn(&Contents<K, V>) -> bool + Send + Sync>;
pub(crate) type Builder<K, V> =
    Arc<dyn Fn(&str) -> Result<Contents<K, V>, HookError> + Send + Sync>;
pub(crate) type Processor<K, V> = Arc<dyn Fn(Contents<K, V>) -> Contents<K, V> + Send + Sync>;

/// The hooks of one cache; `None` means the default.
pub(crate) struct Hooks<K, V> {
    pub saver: Option<Saver<K, V>>,
    pub loader: Option<Loader<K, V>>,
    pub deleter: Option<Deleter>,
    pub validator: Option<Validator<K, V>>,
    pub builder: Option<Builder<K, V>>,
    pub pre_processor: Option<Processor<K, V>>,
    pub post_processor: Option<Processor<K, V>>,
}

impl<K, V> Default for Hooks<K, V> {
    fn default() -> Self {
        Hooks {
            saver: None,
            loader: None,
            deleter: None,
            validator: None,
            builder: None,
            pre_processor: None,
            post_processor: None,
        }
    }
}

impl<K, V> Clone for Hooks<K, V> {
    fn clone(&self) -> Self {
        Hooks {
            saver: self.saver.clone(),
            loader: self.loader.clone(),
            deleter: self.deleter.clone(),
            validator: self.validator.clone(),
            builder: self.builder.clone(),
            pre_processor: self.pre_processor.clone(),
            post_processor: self.post_processor.clone(),
        }
    }
}

impl<K, V> Hooks<K, V> {
    /// Whether saving or loading needs the contents as a map rather than as plain rows.
    pub(crate) fn need_contents_on_save(&self) -> bool {
        self.saver.is_some() || self.pre_processor.is_some()
    }
}
