//! Fuzzes the cache file decoder: the header checks, the identity checks, and the three
//! codecs behind them (postcard with and without byte vectors, JSON, CSV).
//!
//! The first input byte chooses what the rest is. Bits 0-2: the row kind (see
//! `cacheman::__fuzz::file_for`; values from `KINDS` up are skipped). Bit 7 set: the rest is a
//! whole file, decoded as it is. Bit 7 clear: the rest is a payload, wrapped in a header that
//! passes every check and claims bits 3-6 as its entry count, so that the codecs get the
//! fuzzer's bytes (random bytes almost never pass the checksums).
#![no_main]

use cacheman::__fuzz::{KINDS, decode_as, file_for};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let kind = mode & 0x07;
    if kind >= KINDS {
        return;
    }
    if mode & 0x80 != 0 {
        let _ = decode_as(kind, rest);
    } else {
        let entries = u64::from((mode >> 3) & 0x0f);
        let _ = decode_as(kind, &file_for(kind, entries, rest));
    }
});
