//! Fuzzes the journal decoder (`<cache>.journal`): the header checks, the frame scan (lengths,
//! checksums, the torn-tail rule) and each frame's rows and removed keys, whose counts and
//! lengths must never be trusted.
//!
//! The first input byte chooses what the rest is. Bit 7 set: the rest is a whole journal,
//! decoded as it is. Bit 7 clear: the rest is the frames, after a header that passes every
//! check (random bytes almost never pass its checksum). Frames carry checksums too, so the
//! seeds (valid frames) are what lead the fuzzer into the row decoder.
#![no_main]

use cacheman::__fuzz::{decode_journal, journal_file_for};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 0x80 != 0 {
        let _ = decode_journal(rest);
    } else {
        let _ = decode_journal(&journal_file_for(rest));
    }
});
