//! The lowest layer: one cache file, its format, its codec, and how it is written and read.
//! Nothing here knows about managers or dependency graphs.

mod codec;
pub(crate) mod files;
pub(crate) mod format;

use std::fs;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use codec::Codec;

use crate::Error;
use format::{Header, Rejection};

/// Rows read back from a file.
pub(crate) struct Loaded<K, V> {
    /// Key, value, insertion stamp in Unix milliseconds (0 when the file has none).
    pub rows: Vec<(K, V, u64)>,
    pub epoch: u64,
}

/// What a cache needs from its storage. Object-safe, so that a cache handle needs no serde bounds:
/// the serde-typed [`FileStore`] is built where those bounds are known, at registration.
pub(crate) trait Persistence<K, V>: Send + Sync {
    /// Writes every row atomically.
    fn save(&self, rows: &[(K, V, u64)], epoch: u64) -> Result<(), Error>;
    /// `Ok(None)` when there is no file.
    fn load(&self) -> Result<Option<Loaded<K, V>>, Error>;
    fn delete(&self) -> Result<(), Error>;
}

/// Identity written into, and demanded of, a cache file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Identity {
    pub codec: Codec,
    pub type_fingerprint: u64,
    pub fn_fingerprint: u64,
    /// Whether rows carry insertion stamps (caches with a time-to-live).
    pub stamped: bool,
}

impl Identity {
    /// A fingerprint of the key and value types, and of whether rows are stamped (which changes
    /// the row layout).
    pub(crate) fn new<K, V>(codec: Codec, fn_fingerprint: u64, stamped: bool) -> Self {
        let type_fingerprint = format::fnv1a(&[
            std::any::type_name::<K>().as_bytes(),
            std::any::type_name::<V>().as_bytes(),
            if stamped { b"stamped" } else { b"plain" },
        ]);
        Identity {
            codec,
            type_fingerprint,
            fn_fingerprint,
            stamped,
        }
    }
}

/// The default storage: one file per cache, in cacheman's format.
pub(crate) struct FileStore<K, V> {
    cache: String,
    path: PathBuf,
    identity: Identity,
    fault: Option<Box<files::Fault>>,
    _rows: PhantomData<fn() -> (K, V)>,
}

impl<K, V> FileStore<K, V> {
    pub(crate) fn new(cache: &str, path: PathBuf, identity: Identity) -> Self {
        FileStore {
            cache: cache.to_owned(),
            path,
            identity,
            fault: None,
            _rows: PhantomData,
        }
    }

    /// Makes every save consult `fault` before each write (tests only).
    #[cfg(test)]
    pub(crate) fn with_fault(
        mut self,
        fault: impl Fn(u64) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.fault = Some(Box::new(fault));
        self
    }

    /// Takes the save lock, creating the directory if needed, and removes what crashed saves
    /// left behind.
    fn lock(&self) -> Result<files::SaveLock, Error> {
        if let Some(dir) = self.path.parent() {
            files::create_private_dir(dir)
                .map_err(|e| self.io_error("create the cache directory", e))?;
        }
        let lock =
            files::lock_beside(&self.path).map_err(|e| self.io_error("lock the cache file", e))?;
        let orphans = files::remove_orphan_temps(&self.path, &lock);
        if orphans > 0 {
            log::warn!(
                "cacheman: removed {orphans} temporary file(s) left by an interrupted save of cache `{}` in {}",
                self.cache,
                self.path.parent().unwrap_or(&self.path).display()
            );
        }
        Ok(lock)
    }

    fn io_error(&self, action: &'static str, source: io::Error) -> Error {
        Error::Io {
            cache: self.cache.clone(),
            action,
            path: self.path.clone(),
            source,
        }
    }

    fn codec_error(&self, action: &'static str, message: String) -> Error {
        Error::Codec {
            cache: self.cache.clone(),
            action,
            codec: self.identity.codec.name(),
            message,
        }
    }

    fn check_identity(&self, header: &Header) -> Result<(), Rejection> {
        let ours = &self.identity;
        if header.codec != ours.codec.id() {
            return Err(Rejection::Incompatible(format!(
                "another codec (id {}, this cache uses {})",
                header.codec,
                ours.codec.name()
            )));
        }
        if header.type_fingerprint != ours.type_fingerprint {
            return Err(Rejection::Incompatible(
                "other key or value types (the type fingerprint differs)".into(),
            ));
        }
        if header.fn_fingerprint != ours.fn_fingerprint {
            return Err(Rejection::Incompatible(
                "another version of the cached function (the function fingerprint differs)".into(),
            ));
        }
        Ok(())
    }

    fn reject(&self, rejection: Rejection) -> Error {
        match rejection {
            Rejection::Corrupt(reason) => Error::Corrupt {
                cache: self.cache.clone(),
                path: self.path.clone(),
                reason,
            },
            Rejection::Incompatible(reason) => Error::Incompatible {
                cache: self.cache.clone(),
                path: self.path.clone(),
                reason,
            },
        }
    }
}

impl<K, V> Persistence<K, V> for FileStore<K, V>
where
    K: Serialize + DeserializeOwned + Send + Sync,
    V: Serialize + DeserializeOwned + Send + Sync,
{
    fn save(&self, rows: &[(K, V, u64)], epoch: u64) -> Result<(), Error> {
        let codec = self.identity.codec;
        let payload = if self.identity.stamped {
            codec.encode(rows)
        } else {
            let pairs: Vec<(&K, &V)> = rows.iter().map(|(k, v, _)| (k, v)).collect();
            codec.encode(&pairs)
        }
        .map_err(|message| self.codec_error("encode", message))?;
        let header = Header {
            codec: codec.id(),
            type_fingerprint: self.identity.type_fingerprint,
            fn_fingerprint: self.identity.fn_fingerprint,
            epoch,
            entries: rows.len() as u64,
            payload_len: payload.len() as u64,
            payload_crc: crc32fast::hash(&payload),
        };
        let _lock = self.lock()?;
        files::atomic_write(
            &self.path,
            &[&header.encode(), &payload],
            self.fault.as_deref(),
        )
        .map_err(|e| self.io_error("write the cache file", e))
    }

    fn load(&self) -> Result<Option<Loaded<K, V>>, Error> {
        // Opening is when orphans of a crashed save are cleaned, so they never accumulate.
        if self.path.parent().is_some_and(Path::is_dir) {
            drop(self.lock()?);
        }
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(self.io_error("read the cache file", err)),
        };
        let (header, payload) = Header::decode(&bytes).map_err(|r| self.reject(r))?;
        self.check_identity(&header).map_err(|r| self.reject(r))?;
        let codec = self.identity.codec;
        let rows: Vec<(K, V, u64)> = if self.identity.stamped {
            codec.decode(payload)
        } else {
            codec
                .decode::<(K, V)>(payload)
                .map(|pairs| pairs.into_iter().map(|(k, v)| (k, v, 0)).collect())
        }
        .map_err(|message| self.codec_error("decode", message))?;
        if rows.len() as u64 != header.entries {
            return Err(self.reject(Rejection::Corrupt(format!(
                "header counts {} entries but the payload holds {}",
                header.entries,
                rows.len()
            ))));
        }
        Ok(Some(Loaded {
            rows,
            epoch: header.epoch,
        }))
    }

    fn delete(&self) -> Result<(), Error> {
        files::remove_file_durably(&self.path)
            .map_err(|e| self.io_error("remove the cache file", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, stamped: bool) -> FileStore<String, u32> {
        let identity = Identity::new::<String, u32>(Codec::Postcard, 7, stamped);
        FileStore::new("c", files::cache_path(dir, "c"), identity)
    }

    #[test]
    fn rows_round_trip_with_and_without_stamps() {
        let dir = tempfile::tempdir().unwrap();
        for stamped in [false, true] {
            let s = store(dir.path(), stamped);
            s.save(&[("a".into(), 1, 42)], 3).unwrap();
            let loaded = s.load().unwrap().unwrap();
            let want = if stamped { 42 } else { 0 };
            assert_eq!(loaded.rows, vec![("a".to_string(), 1, want)]);
            assert_eq!(loaded.epoch, 3);
        }
    }

    #[test]
    fn a_missing_file_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(store(dir.path(), false).load().unwrap().is_none());
    }

    #[test]
    fn other_types_are_incompatible() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), false)
            .save(&[("a".into(), 1, 0)], 0)
            .unwrap();
        let identity = Identity::new::<String, u64>(Codec::Postcard, 7, false);
        let other: FileStore<String, u64> =
            FileStore::new("c", files::cache_path(dir.path(), "c"), identity);
        assert!(matches!(other.load(), Err(Error::Incompatible { .. })));
    }

    #[test]
    fn another_function_fingerprint_is_incompatible() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), false)
            .save(&[("a".into(), 1, 0)], 0)
            .unwrap();
        let identity = Identity::new::<String, u32>(Codec::Postcard, 8, false);
        let other: FileStore<String, u32> =
            FileStore::new("c", files::cache_path(dir.path(), "c"), identity);
        let err = other.load().err().unwrap();
        assert!(err.to_string().contains("function fingerprint"), "{err}");
    }
}
