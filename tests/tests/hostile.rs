//! Damaged and hostile cache files: bit flips, truncations, extensions, headers with huge
//! count and length fields (with their checksums forged), files of other types and random
//! bytes. Opening one never panics: the cache starts empty with a logged warning, and
//! `reload` returns an error naming the cache and its file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cacheman::{Cache, CacheManager, CacheOptions, Codec, Error};
use proptest::prelude::*;
use tests::support::{capture_warnings, warned_about};

const CODECS: [Codec; 3] = [Codec::Postcard, Codec::Json, Codec::Csv];
/// Header layout (docs/ARCHITECTURE.md): offsets of the fields a hostile file lies about.
const ENTRIES_AT: usize = 36;
const PAYLOAD_LEN_AT: usize = 44;
const PAYLOAD_CRC_AT: usize = 52;
const HEADER_LEN: usize = 68;

/// A name no other test case uses, so that warnings can be told apart.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("c{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn rows() -> Vec<(u64, String)> {
    (0..20)
        .map(|i| (i * 7919, format!("value {i}, with a comma")))
        .collect()
}

/// The bytes of a saved cache of `rows()` in `codec`.
fn saved_file(codec: Codec) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("hostile", dir.path());
    let cache = register::<u64, String>(&manager, "c", codec);
    cache.extend(rows());
    cache.save().unwrap();
    std::fs::read(manager.cache_file_path("c").unwrap()).unwrap()
}

fn register<K, V>(manager: &CacheManager, name: &str, codec: Codec) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Clone + serde::Serialize + serde::de::DeserializeOwned,
    K: Send + Sync + 'static,
    V: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    manager
        .register_custom_cache(name, CacheOptions::new().codec(codec))
        .unwrap()
}

/// What opening a file did.
#[derive(Debug)]
enum Opened {
    /// The file loaded with these rows (only possible if its checksums were forged).
    Loaded(usize),
    /// The file was refused: empty cache, a warning, and this error from `reload`.
    Refused(Error),
}

/// Puts `bytes` where a cache's file goes and opens that cache, checking what every refusal
/// must do.
fn open(bytes: &[u8], codec: Codec) -> Opened {
    capture_warnings();
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name();
    let manager = CacheManager::new("hostile", dir.path());
    let path: PathBuf = manager.cache_file_path(&name).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();

    let cache = register::<u64, String>(&manager, &name, codec);
    match cache.reload() {
        Ok(()) => Opened::Loaded(cache.len()),
        Err(err) => {
            assert!(cache.is_empty(), "{name}: refused file left entries: {err}");
            assert!(warned_about(&name), "{name}: no warning at registration");
            let message = err.to_string();
            assert!(message.contains(&format!("`{name}`")), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(
                matches!(err, Error::Corrupt { .. } | Error::Incompatible { .. }),
                "{name}: unexpected kind of error: {err:?}"
            );
            untouched(&path, bytes);
            Opened::Refused(err)
        }
    }
}

/// A refused file is left as it was (the next save replaces it).
fn untouched(path: &Path, bytes: &[u8]) {
    assert_eq!(
        std::fs::read(path).unwrap(),
        bytes,
        "a refused file was changed"
    );
}

fn refused(opened: Opened) -> Error {
    match opened {
        Opened::Refused(err) => err,
        Opened::Loaded(n) => panic!("a damaged file loaded {n} rows"),
    }
}

fn reseal_header(file: &mut [u8]) {
    let crc = crc32fast::hash(&file[..HEADER_LEN - 4]);
    file[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

fn reseal_payload(file: &mut [u8]) {
    let crc = crc32fast::hash(&file[HEADER_LEN..]);
    file[PAYLOAD_CRC_AT..PAYLOAD_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    reseal_header(file);
}

fn codec_strategy() -> impl Strategy<Value = Codec> {
    prop::sample::select(CODECS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn bit_flips_are_refused(
        codec in codec_strategy(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..6),
    ) {
        let original = saved_file(codec);
        let mut file = original.clone();
        for (at, bit) in &flips {
            file[at.index(original.len())] ^= 1 << bit;
        }
        // Flips can cancel out (the same bit twice): then the file is whole.
        prop_assume!(file != original);
        refused(open(&file, codec));
    }

    #[test]
    fn truncations_are_refused(codec in codec_strategy(), cut in any::<prop::sample::Index>()) {
        let file = saved_file(codec);
        refused(open(&file[..cut.index(file.len())], codec));
    }

    #[test]
    fn extensions_are_refused(
        codec in codec_strategy(),
        extra in prop::collection::vec(any::<u8>(), 1..300),
    ) {
        let mut file = saved_file(codec);
        file.extend_from_slice(&extra);
        refused(open(&file, codec));
    }

    #[test]
    fn huge_count_and_length_fields_are_refused(
        codec in codec_strategy(),
        lie_about_payload_len in any::<bool>(),
        claim in prop_oneof![Just(u64::MAX), Just(1u64 << 62), 1_000u64..],
    ) {
        let mut file = saved_file(codec);
        let at = if lie_about_payload_len { PAYLOAD_LEN_AT } else { ENTRIES_AT };
        file[at..at + 8].copy_from_slice(&claim.to_le_bytes());
        reseal_header(&mut file);
        let err = refused(open(&file, codec));
        prop_assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn forged_payloads_never_panic(
        codec in codec_strategy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in 0usize..40,
    ) {
        // The attacker rewrites payload bytes and forges both checksums: the codecs themselves
        // get hostile input. Any valid rows they make of it may load; nothing may panic.
        let mut file = saved_file(codec);
        let payload_len = file.len() - HEADER_LEN;
        for (at, byte) in &edits {
            file[HEADER_LEN + at.index(payload_len)] = *byte;
        }
        file.truncate(file.len() - cut.min(payload_len));
        let new_len = (file.len() - HEADER_LEN) as u64;
        file[PAYLOAD_LEN_AT..PAYLOAD_LEN_AT + 8].copy_from_slice(&new_len.to_le_bytes());
        reseal_payload(&mut file);
        if let Opened::Loaded(n) = open(&file, codec) {
            prop_assert!(n <= rows().len(), "{n} rows from a payload of {}", rows().len());
        }
    }

    #[test]
    fn random_bytes_are_refused(
        codec in codec_strategy(),
        bytes in prop::collection::vec(any::<u8>(), 0..500),
        with_magic in any::<bool>(),
    ) {
        let mut file = if with_magic { b"CACHEMAN".to_vec() } else { Vec::new() };
        file.extend_from_slice(&bytes);
        refused(open(&file, codec));
    }
}

#[test]
fn files_of_other_types_are_incompatible() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("hostile", dir.path());
    let other = register::<String, u32>(&manager, "other", Codec::Postcard);
    other.insert("x".into(), 1);
    other.save().unwrap();
    let file = std::fs::read(manager.cache_file_path("other").unwrap()).unwrap();
    let err = refused(open(&file, Codec::Postcard));
    assert!(matches!(err, Error::Incompatible { .. }), "{err:?}");
    assert!(err.to_string().contains("type fingerprint"), "{err}");
}

#[test]
fn files_of_another_codec_are_incompatible() {
    let file = saved_file(Codec::Json);
    let err = refused(open(&file, Codec::Postcard));
    assert!(err.to_string().contains("another codec"), "{err}");
}

#[test]
fn an_undamaged_file_loads_in_every_codec() {
    for codec in CODECS {
        match open(&saved_file(codec), codec) {
            Opened::Loaded(n) => assert_eq!(n, rows().len(), "{codec:?}"),
            Opened::Refused(err) => panic!("{codec:?}: {err}"),
        }
    }
}
