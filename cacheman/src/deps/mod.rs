//! Per-entry dependencies: what each cached entry read while it was computed, kept beside the
//! caches of a manager, persisted, and followed when something changes.
//!
//! The model (see docs/ARCHITECTURE.md, "Per-entry dependencies"):
//!
//! - While a miss computes an entry, a **frame** is open on the computing thread (or carried by
//!   the computing future). Every read of an entry of a cache of the same manager, every
//!   [`track_file`](crate::track_file) and [`track_value`](crate::track_value), is an
//!   [`Input`] of that frame: where it came from (cache and key hash, file, or label) and the
//!   **stamp** it had: a hash of the value's encoding for persistent caches, a fresh number for
//!   memory caches, a fingerprint of size, modification time and contents for files.
//! - The finished frame becomes the entry's [`Node`] in the manager's [`EntryGraph`], with the
//!   entry's own stamp. Nodes and their inputs are saved to `<manager dir>/graph.deps`.
//! - A change (an invalidated entry, a changed file, a new function body, an insert of another
//!   value) marks the changed node **dirty** and, following the reverse edges, every node that
//!   read it **suspect**. Their values leave the hit path at once (hits never check anything);
//!   a suspect entry is kept aside and served again without running its body if its inputs
//!   turn out unchanged (early cutoff), a dirty one is recomputed.

mod frame;
mod graph;
mod input;
mod persist;

pub(crate) use frame::{Frame, Recording, record, recording};
pub(crate) use graph::{CacheLink, EntryGraph, HashMap, HashSet, Holder, NodeState, Verdict};
pub use graph::{Explanation, InputReport, InputSource, Staleness};
pub(crate) use input::{Input, Source};
pub use input::{track_file, track_value};

use std::hash::{Hash, Hasher};

/// A hasher whose output is the same in every process and every build of the same types:
/// FNV-1a over what `Hash` writes, with `usize` written as 8 bytes. Persisted key hashes and
/// stamps use it; the maps in memory keep their per-process random seed.
pub(crate) struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for StableHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    // Integers are written little-endian and `usize` as 8 bytes, so that a hash is the same on
    // every platform (the default methods write native-endian bytes).
    fn write_u16(&mut self, n: u16) {
        self.write(&n.to_le_bytes());
    }

    fn write_u32(&mut self, n: u32) {
        self.write(&n.to_le_bytes());
    }

    fn write_u64(&mut self, n: u64) {
        self.write(&n.to_le_bytes());
    }

    fn write_u128(&mut self, n: u128) {
        self.write(&n.to_le_bytes());
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_i16(&mut self, n: i16) {
        self.write_u16(n as u16);
    }

    fn write_i32(&mut self, n: i32) {
        self.write_u32(n as u32);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn write_i128(&mut self, n: i128) {
        self.write_u128(n as u128);
    }

    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        // FNV's low bits mix poorly on short inputs; a final avalanche spreads them.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

impl Extend<u8> for StableHasher {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
        for byte in bytes {
            self.write(&[byte]);
        }
    }
}

impl<'a> Extend<&'a u8> for StableHasher {
    fn extend<I: IntoIterator<Item = &'a u8>>(&mut self, bytes: I) {
        for byte in bytes {
            self.write(&[*byte]);
        }
    }
}

/// The stable hash of a key (or of anything `Hash`).
pub(crate) fn stable_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = StableHasher::default();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The stable id of a cache name in its manager's graph.
/// The stable id of a cache name in its manager's graph; never one of the reserved sources
/// ([`Source::FILES`], [`Source::VALUES`]).
pub(crate) fn cache_id(name: &str) -> u64 {
    stable_hash(name).max(Source::FIRST_CACHE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hashes_do_not_change_between_builds() {
        // Persisted in graph files: a change here orphans every recorded edge.
        assert_eq!(stable_hash(&42u64), stable_hash(&42u64));
        assert_eq!(stable_hash("raw_docs"), cache_id("raw_docs"));
        assert_ne!(stable_hash(&(1u8, 2u8)), stable_hash(&(2u8, 1u8)));
        assert_eq!(stable_hash(&7usize), stable_hash(&7u64));
    }
}
