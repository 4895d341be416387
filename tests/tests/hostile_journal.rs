//! Torn and damaged journals (`<cache>.journal`), through the public API on real files: a cut
//! anywhere (a crash mid-append) loads exactly the saves whose frames are whole, with a
//! warning; a flipped bit inside the last frame's body drops that frame; a flipped bit
//! anywhere else is either refused (`Error::Corrupt` naming the journal) or, in a frame's
//! length, read as a torn tail, and never loads anything but the contents of some save.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use cacheman::{AutoSync, Cache, CacheManager, CacheOptions, Error};
use proptest::prelude::*;
use tests::support::{capture_warnings, warned_about};

/// Bytes of the journal's header.
const HEADER_LEN: u64 = 40;
/// Bytes in front of each frame's body: its length and checksum.
const FRAME_HEAD: u64 = 8;

fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("j{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A cache whose saves were `saves` (each a batch of inserts, a `None` value a removal): the
/// first save writes the snapshot, the others a frame each.
struct Saved {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    name: String,
    journal: PathBuf,
    /// The contents after each save.
    states: Vec<BTreeMap<u8, u32>>,
    /// Where each frame ends in the journal (the first save wrote none).
    frame_ends: Vec<u64>,
}

fn open(dir: &std::path::Path, name: &str) -> (CacheManager, Cache<u8, u32>) {
    let manager = CacheManager::new("m", dir);
    let options = CacheOptions::new().autosync(AutoSync::disabled());
    let cache = manager.register_custom_cache(name, options).unwrap();
    (manager, cache)
}

fn save_all(saves: &[Vec<(u8, Option<u32>)>]) -> Saved {
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name();
    let (manager, cache) = open(dir.path(), &name);
    let journal = manager
        .cache_file_path(&name)
        .unwrap()
        .with_extension("journal");
    let mut state = BTreeMap::new();
    let (mut states, mut frame_ends) = (Vec::new(), Vec::new());
    for (i, batch) in saves.iter().enumerate() {
        for &(key, value) in batch {
            match value {
                Some(value) => {
                    cache.insert(key, value);
                    state.insert(key, value);
                }
                None => {
                    cache.remove(&key);
                    state.remove(&key);
                }
            }
        }
        cache.save().unwrap();
        states.push(state.clone());
        if i > 0 {
            frame_ends.push(std::fs::metadata(&journal).map_or(0, |m| m.len()));
        }
    }
    Saved {
        dir: dir.path().to_owned(),
        _dir: dir,
        name,
        journal,
        states,
        frame_ends,
    }
}

impl Saved {
    fn reload(&self) -> Result<BTreeMap<u8, u32>, Error> {
        let (_manager, cache) = open(&self.dir, &self.name);
        cache.reload()?;
        Ok(cache.snapshot().into_iter().collect())
    }
}

fn batches() -> impl Strategy<Value = Vec<Vec<(u8, Option<u32>)>>> {
    // Keys from a small range, so that later saves overwrite and remove earlier entries. Each
    // batch changes something (a save with no change appends no frame).
    let change = (0u8..12, prop::option::weighted(0.7, any::<u32>()));
    prop::collection::vec(prop::collection::vec(change, 1..6), 3..7)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_cut_anywhere_loads_exactly_the_saves_whose_frames_are_whole(
        saves in batches(),
        at in 0.0f64..1.0,
    ) {
        capture_warnings();
        let saved = save_all(&saves);
        prop_assume!(saved.frame_ends.windows(2).all(|w| w[0] < w[1]));
        let len = *saved.frame_ends.last().unwrap();
        prop_assume!(len > HEADER_LEN);
        let cut = HEADER_LEN + ((len - HEADER_LEN) as f64 * at) as u64;
        let file = std::fs::OpenOptions::new().write(true).open(&saved.journal).unwrap();
        file.set_len(cut).unwrap();
        let whole = saved.frame_ends.iter().filter(|&&end| end <= cut).count();
        let loaded = saved.reload().unwrap();
        prop_assert_eq!(&loaded, &saved.states[whole]);
        if !saved.frame_ends.contains(&cut) && cut > HEADER_LEN {
            prop_assert!(warned_about(&saved.name), "no warning for a torn frame");
        }
    }

    #[test]
    fn a_flipped_bit_never_loads_a_mix(
        saves in batches(),
        at in 0.0f64..1.0,
        bit in 0u8..8,
    ) {
        capture_warnings();
        let saved = save_all(&saves);
        prop_assume!(saved.frame_ends.windows(2).all(|w| w[0] < w[1]));
        let len = *saved.frame_ends.last().unwrap();
        prop_assume!(len > HEADER_LEN);
        let mut bytes = std::fs::read(&saved.journal).unwrap();
        let byte = HEADER_LEN + ((len - HEADER_LEN) as f64 * at) as u64;
        bytes[byte as usize] ^= 1 << bit;
        std::fs::write(&saved.journal, &bytes).unwrap();
        let frames = saved.frame_ends.len();
        let last_start = if frames > 1 { saved.frame_ends[frames - 2] } else { HEADER_LEN };
        match saved.reload() {
            Ok(loaded) => {
                // Only the last frame can go, and only if the flip was in it or in a length.
                let in_last = byte >= last_start;
                prop_assert!(in_last || is_length(&saved, byte), "flip at {byte} loaded");
                prop_assert!(saved.states.contains(&loaded), "a mix of saves: {loaded:?}");
                if in_last && byte >= last_start + FRAME_HEAD {
                    prop_assert_eq!(&loaded, &saved.states[frames - 1]);
                }
            }
            Err(err) => {
                prop_assert!(matches!(err, Error::Corrupt { .. }), "{err}");
                prop_assert!(err.to_string().contains(".journal"), "{err}");
                // Only damage before the last frame (or a length that now falls short of it).
                prop_assert!(byte < last_start + 4, "flip at {byte}");
            }
        }
    }
}

/// Whether `byte` is in one of the frames' length fields.
fn is_length(saved: &Saved, byte: u64) -> bool {
    std::iter::once(HEADER_LEN)
        .chain(saved.frame_ends.iter().copied())
        .any(|start| (start..start + 4).contains(&byte))
}
