//! Decoding a hostile file allocates no more than about the file's size, however large the
//! counts and lengths it claims. A counting global allocator (this test binary's own) measures
//! the peak of live bytes allocated on the decoding thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cacheman::__fuzz::{KINDS, decode_as, file_for, payload_for};

/// Bytes the decoder may allocate beyond the file's size: error messages and the like.
const SLACK: usize = 4096;

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

/// A hostile file, and how many times its size decoding it may allocate (plus [`SLACK`]).
struct Hostile {
    what: &'static str,
    kind: u8,
    file: Vec<u8>,
    times_its_size: usize,
}

fn hostile(what: &'static str, kind: u8, file: Vec<u8>) -> Hostile {
    Hostile {
        what,
        kind,
        file,
        times_its_size: 1,
    }
}

/// Hostile files of every row kind (see `cacheman::__fuzz::file_for`).
fn hostile_files() -> Vec<Hostile> {
    let garbage = [0xffu8; 65_536];
    let mut files = vec![
        hostile(
            "postcard: 2^62 rows claimed by the prefix and the header",
            0,
            file_for(0, u64::MAX, &concat(&[&varint(1 << 62), &garbage])),
        ),
        hostile(
            "postcard: 2^62 rows claimed by the prefix, few by the header",
            0,
            file_for(0, 3, &concat(&[&varint(1 << 62), &garbage])),
        ),
        hostile(
            "postcard: as many rows claimed as there are bytes left",
            0,
            file_for(0, 3, &concat(&[&varint(65_536), &garbage])),
        ),
        hostile(
            "postcard: a string of 2^40 bytes",
            0,
            file_for(
                0,
                1,
                &concat(&[&varint(1), &varint(7), &varint(1 << 40), b"abc"]),
            ),
        ),
        hostile(
            "postcard: a nested Vec claiming 2^40 items",
            1,
            file_for(
                1,
                1,
                &concat(&[&varint(1), &varint(1), b"k", &varint(1 << 40), &garbage]),
            ),
        ),
        // A collection inside the value type is serde's own `Vec<u32>`: it trusts a claimed
        // length up to the bytes left (postcard's check), so it may reserve 4 bytes (one u32)
        // per byte left, capped at 1 MiB by serde. A documented limit (docs/PROMISES.md).
        Hostile {
            times_its_size: std::mem::size_of::<u32>(),
            ..hostile(
                "postcard: a nested Vec claiming as many items as there are bytes left",
                1,
                file_for(
                    1,
                    1,
                    &concat(&[&varint(1), &varint(1), b"k", &varint(65_536), &garbage]),
                ),
            )
        },
        hostile(
            "postcard: a byte vector claiming 2^40 bytes",
            4,
            file_for(
                4,
                1,
                &concat(&[&varint(1), &varint(1), &varint(1 << 40), &garbage]),
            ),
        ),
        hostile(
            "postcard: byte vectors claiming as many bytes as there are left",
            4,
            file_for(
                4,
                2,
                &concat(&[&varint(2), &varint(1), &varint(65_535), &garbage[..65_535]]),
            ),
        ),
        hostile(
            "JSON: nesting 100,000 deep",
            2,
            file_for(2, 1, "[".repeat(100_000).as_bytes()),
        ),
        hostile(
            "JSON: a string that never ends",
            2,
            file_for(2, 1, &concat(&[b"[[1,\"", &[b'a'; 65_536]])),
        ),
        // CSV claims no lengths, but the csv crate grows its record buffer by doubling while
        // it reads a field: about 3 times the field's real bytes. A documented limit.
        Hostile {
            times_its_size: 4,
            ..hostile(
                "CSV: one field of 64 KiB and no second field",
                3,
                file_for(3, 1, &[b'a'; 65_536]),
            )
        },
    ];
    // And every kind claiming 2^64 - 1 rows over a valid payload.
    let rows = vec![(1, "one".to_string()), (2, "two".into())];
    for kind in 0..KINDS {
        files.push(hostile(
            "a valid payload with a huge header count",
            kind,
            file_for(kind, u64::MAX, &payload_for(kind, &rows)),
        ));
    }
    files
}

#[test]
fn decoding_hostile_files_allocates_no_more_than_their_size() {
    for Hostile {
        what,
        kind,
        file,
        times_its_size,
    } in hostile_files()
    {
        let mut outcome = Ok(0);
        let peak = peak_allocated(|| outcome = decode_as(kind, &file));
        eprintln!(
            "{what}: {} bytes, peak {peak} bytes allocated: {outcome:?}",
            file.len()
        );
        assert!(outcome.is_err(), "{what}: accepted");
        assert!(
            peak <= times_its_size * file.len() + SLACK,
            "{what}: a {}-byte file made the decoder allocate {peak} bytes",
            file.len()
        );
    }
}

#[test]
fn the_counter_sees_allocations() {
    // Without this the test above could pass with a counter that counts nothing.
    let peak = peak_allocated(|| drop(std::hint::black_box(vec![0u8; 100_000])));
    assert!(peak >= 100_000, "peak {peak}");
}
