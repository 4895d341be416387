//! A hash that is the same in every process and every build: for what is persisted (key hashes
//! and stamps in the dependency graph) or compared between processes.

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
