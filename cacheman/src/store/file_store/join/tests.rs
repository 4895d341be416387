use super::*;
use std::collections::HashMap;

use crate::store::codec::PostcardRows;
use crate::store::journal::{self, Frame};

type Row = (u32, String, RowMeta);

fn row(key: u32, value: &str) -> Row {
    let meta = RowMeta {
        stamp_ms: u64::from(key) * 10,
        uses: (key % 4) as u8,
    };
    (key, value.to_owned(), meta)
}

fn payload(rows: &[Row], layout: Layout) -> Vec<u8> {
    let mut encoded = PostcardRows::<u32, String>::new("c", layout, 0);
    for (key, value, meta) in rows {
        encoded.put(key, value, *meta).unwrap();
    }
    encoded.bytes().to_vec()
}

fn frame(rows: &[Row], removed: &[u32]) -> Frame<u32, String> {
    Frame {
        rows: rows.to_vec(),
        removed: removed.to_vec(),
    }
}

/// What a replay must give, the plain way: the snapshot's rows no frame names, in order,
/// then each key's last put, in the order of the frames, unless a later frame removed it.
fn replayed_plainly(snapshot: &[Row], frames: &[Frame<u32, String>]) -> Vec<Row> {
    let mut entries = Vec::new();
    for frame in frames {
        entries.extend(frame.removed.iter().map(|k| (*k, None)));
        entries.extend(frame.rows.iter().map(|r| (r.0, Some(r.clone()))));
    }
    let last: HashMap<u32, usize> = entries.iter().enumerate().map(|(i, e)| (e.0, i)).collect();
    let kept = snapshot
        .iter()
        .filter(|r| !last.contains_key(&r.0))
        .cloned();
    let puts = entries
        .iter()
        .enumerate()
        .filter(|(i, (key, _))| last[key] == *i)
        .filter_map(|(_, (_, put))| put.clone());
    kept.chain(puts).collect()
}

/// Hashes a `u32` key with a function: bad hashes, on purpose.
struct ByFn<'a>(&'a dyn Fn(&u32) -> u64);

/// What [`ByFn`] hashes: the key's bytes, then the function applied to the key they make.
struct ByFnHasher<'a>(&'a dyn Fn(&u32) -> u64, Vec<u8>);

impl std::hash::Hasher for ByFnHasher<'_> {
    fn finish(&self) -> u64 {
        let key = u32::from_ne_bytes(self.1.as_slice().try_into().unwrap());
        (self.0)(&key)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.1.extend_from_slice(bytes);
    }
}

impl<'a> BuildHasher for ByFn<'a> {
    type Hasher = ByFnHasher<'a>;
    fn build_hasher(&self) -> ByFnHasher<'a> {
        ByFnHasher(self.0, Vec::new())
    }
}

/// Every key one hash (one slot, one tag); every key its own slot and tag 0; every key the
/// first slot (low bits 0) with tags that differ.
const SHAPES: [fn(u64) -> u64; 3] = [|_| 0x5555_5555_5555_5555, |k| k, |k| k << 32];

const LAYOUTS: [Layout; 3] = [
    Layout {
        stamped: false,
        sized: true,
        counted: false,
    },
    Layout {
        stamped: true,
        sized: true,
        counted: false,
    },
    Layout {
        stamped: true,
        sized: true,
        counted: true,
    },
];

/// `rows` as they read back from bytes laid out as `layout` says.
fn as_read(rows: &[Row], layout: Layout) -> Vec<Row> {
    rows.iter()
        .map(|(k, v, m)| {
            let stamp_ms = if layout.stamped { m.stamp_ms } else { 0 };
            let uses = if layout.counted { m.uses } else { 0 };
            (*k, v.clone(), RowMeta { stamp_ms, uses })
        })
        .collect()
}

/// Each frame encoded as a journal holds it: its body.
fn bodies(frames: &[Frame<u32, String>], layout: Layout) -> Vec<Vec<u8>> {
    frames
        .iter()
        .map(|f| {
            let whole = journal::encode_frame("c", layout, &f.rows, &f.removed).unwrap();
            whole[journal::FRAME_HEAD..].to_vec()
        })
        .collect()
}

/// The indexed replay's rows equal the plain replay's, for every layout and hash.
fn check(snapshot: &[Row], frames: &[Frame<u32, String>]) {
    for layout in LAYOUTS {
        let bytes = payload(snapshot, layout);
        let read: Vec<_> = frames
            .iter()
            .map(|f| frame(&as_read(&f.rows, layout), &f.removed))
            .collect();
        let want = replayed_plainly(&as_read(snapshot, layout), &read);
        let encoded = bodies(frames, layout);
        let bodies: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        let rows = SizedRows {
            bytes: &bytes,
            count: snapshot.len() as u64,
            layout,
        };
        let replay = |hasher: &dyn Fn(&u32) -> u64| {
            let hasher = ByFn(hasher);
            replay_over::<u32, String, _>(rows, &bodies, layout, &hasher).unwrap()
        };
        let store = crate::shards::Hasher::default();
        let got = replay(&|k| store.hash_one(k));
        assert_eq!(got, want, "{layout:?}, the store's hash");
        for (at, shape) in SHAPES.into_iter().enumerate() {
            let got = replay(&|k| shape(u64::from(*k)));
            assert_eq!(got, want, "{layout:?}, hash shape {at}");
        }
    }
}

fn snapshot_of(keys: std::ops::Range<u32>) -> Vec<Row> {
    keys.map(|k| row(k, &format!("snapshot {k}"))).collect()
}

#[test]
fn later_frames_win_and_removals_count() {
    let frames = [
        frame(&[row(1, "a"), row(2, "b"), row(20, "new")], &[3]),
        // Put and removed again, and a key removed then put back in one frame (removals
        // first).
        frame(&[row(4, "d"), row(2, "b2")], &[1, 2, 20]),
        frame(&[row(1, "a3"), row(5, "e")], &[4, 5, 99]),
        // One key twice in one frame: the second put wins.
        frame(&[row(6, "f"), row(6, "f2")], &[]),
    ];
    check(&snapshot_of(0..10), &frames);
}

#[test]
fn an_empty_journal_keeps_the_snapshot_as_it_is() {
    let snapshot = snapshot_of(0..50);
    check(&snapshot, &[]);
    check(&snapshot, &[frame(&[], &[]), frame(&[], &[])]);
    check(&[], &[]);
}

#[test]
fn a_journal_of_other_keys_than_the_snapshot_only_adds() {
    let frames = [frame(&[row(100, "x"), row(101, "y")], &[102])];
    check(&snapshot_of(0..40), &frames);
    check(&[], &frames);
}

#[test]
fn many_frames_over_many_keys_replay_as_the_plain_fold_does() {
    // A small linear congruential generator: the same scattered puts and removals each run.
    let mut state = 12_345u64;
    let mut next = |below: u32| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        ((state >> 33) % u64::from(below)) as u32
    };
    let frames: Vec<_> = (0..12)
        .map(|f| {
            let rows: Vec<Row> = (0..150)
                .map(|_| next(3_000))
                .map(|k| row(k, &format!("frame {f}")))
                .collect();
            let removed: Vec<u32> = (0..40).map(|_| next(3_000)).collect();
            frame(&rows, &removed)
        })
        .collect();
    check(&snapshot_of(0..2_000), &frames);
}

#[test]
fn damaged_rows_are_errors_on_their_side_not_panics() {
    let layout = LAYOUTS[2];
    let bytes = payload(&snapshot_of(0..5), layout);
    let encoded = bodies(
        &[frame(&[row(1, "a")], &[2]), frame(&[row(3, "c")], &[])],
        layout,
    );
    let frames: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
    let hasher = crate::shards::Hasher::default();
    let replay = |bytes: &[u8], count, frames: &[&[u8]]| {
        let rows = SizedRows {
            bytes,
            count,
            layout,
        };
        replay_over::<u32, String, _>(rows, frames, layout, &hasher).map(drop)
    };
    let snapshot_damage = |e: Result<(), Damage>| match e {
        Err(Damage::Snapshot(message)) => message,
        other => panic!("{other:?}"),
    };
    let short = snapshot_damage(replay(&bytes[..bytes.len() - 1], 5, &frames));
    assert!(short.contains("row 4 of 5"), "{short}");
    let longer = [bytes.as_slice(), &[0]].concat();
    let longer = snapshot_damage(replay(&longer, 5, &frames));
    assert!(longer.contains("1 unexpected bytes"), "{longer}");
    snapshot_damage(replay(&bytes, 6, &frames));
    // The second frame's value: not UTF-8, but of the length it claims, so it is stepped
    // over when its key is scattered and refused when it is decoded.
    let mut bad = encoded[1].clone();
    let at = bad.windows(2).position(|w| w == [1, b'c']).unwrap();
    bad[at + 1] = 0xff;
    let frames = [frames[0], bad.as_slice()];
    assert!(matches!(
        replay(&bytes, 5, &frames),
        Err(Damage::Journal { frame: 1, .. })
    ));
    // A frame cut short.
    let frames = [frames[0], &bad[..bad.len() - 1]];
    assert!(matches!(
        replay(&bytes, 5, &frames),
        Err(Damage::Journal { frame: 1, .. })
    ));
}

#[test]
fn small_journals_keep_one_table() {
    assert!(!index_pays::<u64>(1_000));
    assert!(!index_pays::<u64>(64 * 1024));
    assert!(index_pays::<u64>(128 * 1024));
    assert!(index_pays::<String>(100_000));
    assert!(!index_pays::<u8>(u32::MAX as usize));
}

#[test]
fn a_journal_is_indexed_below_four_billion_entries() {
    assert!(indexable(0));
    assert!(indexable(500_000));
    assert!(indexable(u32::MAX as usize - 1));
    assert!(!indexable(u32::MAX as usize));
}

#[test]
fn the_table_is_at_most_half_full_and_finds_every_last_entry() {
    let layout = LAYOUTS[0];
    let encoded = bodies(
        &[
            frame(&(0..100).map(|k| row(k, "a")).collect::<Vec<_>>(), &[]),
            frame(&(50..150).map(|k| row(k, "b")).collect::<Vec<_>>(), &[0]),
        ],
        layout,
    );
    let frames: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
    let hasher = crate::shards::Hasher::default();
    let index = JournalIndex::<u32>::new(&frames, layout, &hasher).unwrap();
    assert_eq!(index.keys.len(), 201);
    assert!(index.table.len() >= 2 * index.keys.len());
    let held = index.table.iter().filter(|&&slot| slot != 0).count();
    // 150 keys, each once, at its last entry: key 0's removal, 1..50 of the first frame,
    // 50..150 of the second.
    assert_eq!(held, 150);
    for key in 0..150u32 {
        let (_, last) = index.probe(&key, hasher.hash_one(key));
        let want = match key {
            0 => 100,
            1..50 => key as usize,
            _ => 101 + (key as usize - 50),
        };
        assert_eq!(last, Some(want), "key {key}");
    }
    assert_eq!(index.probe(&150, hasher.hash_one(150u32)).1, None);
}
