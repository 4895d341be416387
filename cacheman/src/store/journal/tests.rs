//! Frames: round trips, torn tails dropped, damage before the last frame refused.

use super::*;

fn frame(rows: &[(u32, String, u64)], removed: &[u32]) -> Vec<u8> {
    let rows = crate::shards::stamped_rows(rows.to_vec());
    encode_frame("c", Layout::current(false, false), &rows, removed).unwrap()
}

fn two_frames() -> (Vec<u8>, usize) {
    let first = frame(&[(1, "one".into(), 0), (2, "two".into(), 0)], &[]);
    let second = frame(&[(3, "three".into(), 0)], &[1]);
    let split = first.len();
    ([first, second].concat(), split)
}

fn decoded(bytes: &[u8]) -> Vec<Frame<u32, String>> {
    let scan = scan(bytes).unwrap();
    scan.bodies
        .iter()
        .map(|body| decode_body(body, Layout::current(false, false)).unwrap())
        .collect()
}

#[test]
fn frames_round_trip_in_order() {
    let (bytes, _) = two_frames();
    let frames = decoded(&bytes);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].rows.len(), 2);
    assert_eq!(
        frames[1].rows,
        crate::shards::stamped_rows(vec![(3, "three".to_string(), 0)])
    );
    assert_eq!(frames[1].removed, vec![1]);
    assert_eq!(scan(&bytes).unwrap().end, bytes.len());
}

#[test]
fn every_cut_inside_the_last_frame_is_torn_and_keeps_the_frames_before() {
    let (bytes, split) = two_frames();
    for len in split + 1..bytes.len() {
        let scan = scan(&bytes[..len]).unwrap();
        assert_eq!(scan.bodies.len(), 1, "cut at {len}");
        assert_eq!(scan.end, split, "cut at {len}");
        assert!(scan.torn.is_some(), "cut at {len}");
    }
    for len in 1..split {
        let scan = scan(&bytes[..len]).unwrap();
        assert!(scan.bodies.is_empty() && scan.end == 0 && scan.torn.is_some());
    }
}

#[test]
fn a_flipped_bit_in_the_last_frame_is_torn_and_before_it_is_damage() {
    let (bytes, split) = two_frames();
    for byte in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[byte] ^= 0x10;
        match scan(&bad) {
            Ok(scan) => {
                // Only the last frame may go, and only as torn.
                assert!(byte >= split || scan.bodies.is_empty(), "flip at {byte}");
                assert!(scan.torn.is_some(), "flip at {byte} went unnoticed");
                assert!(scan.end <= split);
            }
            Err(message) => {
                assert!(byte < split, "flip at {byte} in the last frame refused");
                assert!(message.contains("before the last frame"), "{message}");
            }
        }
    }
}

#[test]
fn zeros_after_the_frames_are_a_torn_append() {
    let (bytes, _) = two_frames();
    let mut padded = bytes.clone();
    padded.extend_from_slice(&[0; 100]);
    let scan = scan(&padded).unwrap();
    assert_eq!((scan.bodies.len(), scan.end), (2, bytes.len()));
    assert!(scan.torn.is_some());
}

#[test]
fn counts_larger_than_the_frame_are_refused_before_decoding() {
    let mut body = frame(&[(1, "one".into(), 0)], &[])[FRAME_HEAD..].to_vec();
    body[1..9].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(decode_body::<u32, String>(&body, Layout::current(false, false)).is_err());
    let mut body = frame(&[], &[1])[FRAME_HEAD..].to_vec();
    body[9..17].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(decode_body::<u32, String>(&body, Layout::current(false, false)).is_err());
    let mut body = frame(&[], &[1])[FRAME_HEAD..].to_vec();
    body[17..25].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(decode_body::<u32, String>(&body, Layout::current(false, false)).is_err());
}

#[test]
fn the_header_round_trips_and_refuses_a_flipped_bit() {
    let identity = Identity::new::<u32, String>(Codec::Postcard, 9, false);
    let header = JournalHeader::of(&identity, 4);
    let bytes = header.encode();
    assert_eq!(bytes.len() as u64, HEADER_LEN);
    assert_eq!(JournalHeader::decode(&bytes), Ok(header));
    assert!(header.matches(&identity));
    let other = Identity::new::<u32, u32>(Codec::Postcard, 9, false);
    assert!(!header.matches(&other));
    for byte in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[byte] ^= 1;
        assert!(JournalHeader::decode(&bad).is_err(), "flip at {byte}");
    }
}
