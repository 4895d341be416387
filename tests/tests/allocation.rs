//! Decoding a hostile file allocates no more than docs/PROMISES.md says, however large the
//! counts and lengths it claims. A counting global allocator (this test binary's own) measures
//! the peak of live bytes allocated on the decoding thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cacheman::__fuzz::{KINDS, decode_as, file_for, payload_for};

/// What any refusal may allocate, whatever the file: the error and its message (a few hundred
/// bytes; docs/PROMISES.md).
const MESSAGE: usize = 1024;

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The peak of live bytes `run` allocates on this thread, above what was live before it.
fn peak_allocated(run: impl FnOnce()) -> usize {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    run();
    (PEAK.with(Cell::get) - start).max(0) as usize
}

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A value as format version 4 writes it: its length, then its bytes.
fn sized(value: &[u8]) -> Vec<u8> {
    concat(&[&varint(value.len() as u64), value])
}

/// A hostile file, and the most that decoding it may allocate: [`MESSAGE`], plus
/// `times_its_payload` times the payload's size (0 for a claim the bytes cannot back: such a
/// claim must reserve nothing at all).
struct Hostile {
    what: &'static str,
    kind: u8,
    file: Vec<u8>,
    times_its_payload: usize,
}

impl Hostile {
    fn bound(&self) -> usize {
        self.times_its_payload * (self.file.len() - HEADER_LEN) + MESSAGE
    }
}

/// The header [`file_for`] puts in front of the payload.
const HEADER_LEN: usize = 68;

/// A file whose claims its bytes cannot back: decoding it allocates no more than an error.
fn claiming(what: &'static str, kind: u8, file: Vec<u8>) -> Hostile {
    Hostile {
        what,
        kind,
        file,
        times_its_payload: 0,
    }
}

/// A file whose claims its bytes could back: decoding it may allocate `times` its payload.
fn backed(what: &'static str, kind: u8, times: usize, file: Vec<u8>) -> Hostile {
    Hostile {
        what,
        kind,
        file,
        times_its_payload: times,
    }
}

/// Hostile files of every row kind (see `cacheman::__fuzz::file_for`: kinds 0, 1 and 4 are
/// postcard in the format version this build writes, whose rows the header counts, each value
/// with its length in front, kind 4's rows ending with a use count; 5 and 6 are version 1,
/// whose payload starts with its own row count; 7 is version 3, whose values have no length).
fn hostile_files() -> Vec<Hostile> {
    let garbage = [0xffu8; 65_536];
    let mut files = vec![
        claiming(
            "postcard v1: 2^62 rows claimed by the prefix and the header",
            5,
            file_for(5, u64::MAX, &concat(&[&varint(1 << 62), &garbage])),
        ),
        claiming(
            "postcard v1: 2^62 rows claimed by the prefix, few by the header",
            5,
            file_for(5, 3, &concat(&[&varint(1 << 62), &garbage])),
        ),
        // The documented case (docs/PROMISES.md): serde's own reservation made this file
        // allocate 1 MiB.
        backed(
            "postcard v1: as many rows claimed by the prefix as there are bytes left",
            5,
            1,
            file_for(5, 3, &concat(&[&varint(65_536), &garbage])),
        ),
        backed(
            "postcard: as many rows claimed by the header as the payload has bytes",
            0,
            1,
            file_for(0, garbage.len() as u64, &garbage),
        ),
        claiming(
            "postcard: a string of 2^40 bytes",
            0,
            file_for(
                0,
                1,
                &concat(&[&varint(7), &sized(&concat(&[&varint(1 << 40), b"abc"]))]),
            ),
        ),
        claiming(
            "postcard: a value length of 2^40 bytes",
            0,
            file_for(0, 1, &concat(&[&varint(7), &varint(1 << 40), b"abc"])),
        ),
        claiming(
            "postcard v3: a string of 2^40 bytes",
            7,
            file_for(7, 1, &concat(&[&varint(7), &varint(1 << 40), b"abc"])),
        ),
        claiming(
            "postcard v1: a string of 2^40 bytes",
            5,
            file_for(
                5,
                1,
                &concat(&[&varint(1), &varint(7), &varint(1 << 40), b"abc"]),
            ),
        ),
        claiming(
            "postcard: a nested Vec claiming 2^40 items",
            1,
            file_for(
                1,
                1,
                &concat(&[
                    &varint(1),
                    b"k",
                    &sized(&concat(&[&varint(1 << 40), &garbage])),
                ]),
            ),
        ),
        // A collection inside the value type is serde's own `Vec<u32>`: it trusts a claimed
        // length up to the bytes left (postcard's check), so it may reserve 4 bytes (one u32)
        // per byte left, capped at 1 MiB by serde. A documented limit (docs/PROMISES.md).
        backed(
            "postcard: a nested Vec claiming as many items as there are bytes left",
            1,
            std::mem::size_of::<u32>(),
            file_for(
                1,
                1,
                &concat(&[
                    &varint(1),
                    b"k",
                    &sized(&concat(&[&varint(65_536), &garbage])),
                ]),
            ),
        ),
        // A `Vec<u8>` is read through serde, which grows it as bytes come (reserving no more
        // than its cautious size hint): at most as much as the payload holds.
        backed(
            "postcard: a byte vector claiming 2^40 bytes",
            4,
            1,
            file_for(
                4,
                1,
                &concat(&[&varint(1), &sized(&concat(&[&varint(1 << 40), &garbage]))]),
            ),
        ),
        backed(
            "postcard v1: a byte vector claiming 2^40 bytes",
            6,
            1,
            file_for(
                6,
                1,
                &concat(&[&varint(1), &varint(1), &varint(1 << 40), &garbage]),
            ),
        ),
        // The bytes are there: the first value is read whole, its use count is missing.
        backed(
            "postcard: byte vectors claiming as many bytes as there are left",
            4,
            1,
            file_for(
                4,
                2,
                &concat(&[
                    &varint(1),
                    &sized(&concat(&[&varint(65_532), &garbage[..65_532]])),
                ]),
            ),
        ),
        claiming(
            "JSON: nesting 100,000 deep",
            2,
            file_for(2, 1, "[".repeat(100_000).as_bytes()),
        ),
        claiming(
            "JSON: a string that never ends",
            2,
            file_for(2, 1, &concat(&[b"[[1,\"", &[b'a'; 65_536]])),
        ),
        // CSV claims no lengths, but the csv crate grows its record buffer by doubling while
        // it reads a field: about 3 times the field's real bytes. A documented limit.
        backed(
            "CSV: one field of 64 KiB and no second field",
            3,
            4,
            file_for(3, 1, &[b'a'; 65_536]),
        ),
    ];
    // And every kind claiming 2^64 - 1 rows over a valid payload.
    let rows = vec![(1, "one".to_string()), (2, "two".into())];
    for kind in 0..KINDS {
        files.push(claiming(
            "a valid payload with a huge header count",
            kind,
            file_for(kind, u64::MAX, &payload_for(kind, &rows)),
        ));
    }
    files
}

#[test]
fn decoding_hostile_files_allocates_no_more_than_documented() {
    for hostile in hostile_files() {
        let mut outcome = Ok(0);
        let peak = peak_allocated(|| outcome = decode_as(hostile.kind, &hostile.file));
        let (what, size, bound) = (hostile.what, hostile.file.len(), hostile.bound());
        eprintln!(
            "{what}: {size} bytes, peak {peak} bytes allocated (at most {bound}): {outcome:?}"
        );
        assert!(outcome.is_err(), "{what}: accepted");
        assert!(
            peak <= bound,
            "{what}: a {size}-byte file made the decoder allocate {peak} bytes, over {bound}"
        );
    }
}

/// The reservations the bounds above allow for really happen: a test whose files all failed
/// at their first byte would pass whatever the decoder reserved.
#[test]
fn files_the_bytes_could_back_reserve_close_to_the_bound() {
    for hostile in hostile_files()
        .into_iter()
        .filter(|h| h.times_its_payload > 0)
    {
        let mut outcome = Ok(0);
        let peak = peak_allocated(|| outcome = decode_as(hostile.kind, &hostile.file));
        let payload = hostile.file.len() - HEADER_LEN;
        assert!(
            peak >= payload * 9 / 10,
            "{}: peak {peak} bytes, less than the payload ({payload}): the claim was not \
             exercised",
            hostile.what
        );
    }
}

#[test]
fn the_counter_sees_allocations() {
    // Without this the test above could pass with a counter that counts nothing.
    let peak = peak_allocated(|| drop(std::hint::black_box(vec![0u8; 100_000])));
    assert!(peak >= 100_000, "peak {peak}");
}
