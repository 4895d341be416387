use std::path::PathBuf;

use super::*;
use crate::deps::Input;
use crate::deps::state::NodeState;

fn node(stamp: u64, state: NodeState) -> Node {
    Node {
        stamp,
        state,
        inputs: vec![Input {
            source: Source::VALUES,
            key: 4,
            seen: stamp,
        }]
        .into_boxed_slice(),
    }
}

/// A state whose `changed` names node (9, 1), a removed node (9, 2), a file and a value.
fn changed_state() -> State {
    let mut state = State::default();
    state.nodes.insert((9, 1), node(11, NodeState::Suspect));
    state.files.insert(
        3,
        FileState {
            path: PathBuf::from("/etc/app.toml"),
            len: 12,
            modified_ns: 13,
            stamp: 14,
        },
    );
    state.values.insert(4, ("threshold".into(), 15));
    state
        .recorded_fingerprints
        .insert(9, ("derived".into(), 16));
    for id in [(9, 1), (9, 2), (Source::FILES, 3), (Source::VALUES, 4)] {
        state.changed.insert(id);
    }
    state
}

/// A journal of generation 7 with two frames: the second makes node (9, 1) dirty, and where
/// each frame ends.
fn two_frames() -> (Vec<u8>, [usize; 2]) {
    let mut state = changed_state();
    let mut bytes = header(7);
    bytes.extend(encode_frame(&state, &state.changed, true).unwrap());
    let first = bytes.len();
    state.nodes.insert((9, 1), node(11, NodeState::Dirty));
    let only: HashSet<NodeId> = [(9, 1)].into_iter().collect();
    bytes.extend(encode_frame(&state, &only, false).unwrap());
    let second = bytes.len();
    (bytes, [first, second])
}

fn read_bytes(bytes: &[u8]) -> (Result<Option<Tail>, String>, Folded) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(JOURNAL_FILE);
    std::fs::write(&path, bytes).unwrap();
    let mut folded = Folded::default();
    (read(&path, 7, 0, &mut folded), folded)
}

#[test]
fn a_frame_round_trips_with_its_removals() {
    let state = changed_state();
    let frame = encode_frame(&state, &state.changed, true).unwrap();
    let (stored, removed) = decode_body(&frame[FRAME_HEAD..]).unwrap();
    assert_eq!(stored.nodes, vec![((9, 1), node(11, NodeState::Suspect))]);
    assert_eq!(removed, vec![(9, 2)]);
    assert_eq!(stored.files[0].1, state.files[&3]);
    assert_eq!(stored.values, vec![(4, "threshold".into(), 15)]);
    assert_eq!(stored.fingerprints, vec![(9, "derived".into(), 16)]);
    // Nothing changed, no fingerprints: no frame.
    assert!(encode_frame(&state, &HashSet::default(), false).is_none());
    // Fingerprints are left out unless asked for.
    let only: HashSet<NodeId> = [(9, 2)].into_iter().collect();
    let frame = encode_frame(&state, &only, false).unwrap();
    let (stored, removed) = decode_body(&frame[FRAME_HEAD..]).unwrap();
    assert!(stored.fingerprints.is_empty() && stored.nodes.is_empty());
    assert_eq!(removed, vec![(9, 2)]);
}

#[test]
fn frames_replay_in_order() {
    let (bytes, [_, end]) = two_frames();
    let (tail, folded) = read_bytes(&bytes);
    let tail = tail.unwrap().unwrap();
    assert_eq!((tail.frames, tail.end, tail.torn), (2, end as u64, None));
    assert_eq!(folded.nodes[&(9, 1)], Some(node(11, NodeState::Dirty)));
    assert_eq!(folded.nodes[&(9, 2)], None);
    // From the first frame's end, only the second is read.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(JOURNAL_FILE);
    std::fs::write(&path, &bytes).unwrap();
    let mut folded = Folded::default();
    let first_end = two_frames().1[0] as u64;
    let tail = read(&path, 7, first_end, &mut folded).unwrap().unwrap();
    assert_eq!(tail.frames, 1);
    assert!(folded.files.is_empty() && !folded.nodes.contains_key(&(9, 2)));
    // A journal of another generation continues another snapshot: ignored.
    let mut folded = Folded::default();
    assert!(read(&path, 8, 0, &mut folded).unwrap().is_none());
}

#[test]
fn every_cut_keeps_the_whole_frames_before_it_and_drops_a_torn_one() {
    let (bytes, [first, second]) = two_frames();
    for cut in 0..=bytes.len() {
        let (tail, folded) = read_bytes(&bytes[..cut]);
        if cut < HEADER_LEN as usize {
            assert!(tail.is_err(), "cut at {cut}: a short header is damage");
            continue;
        }
        let tail = tail.unwrap().unwrap();
        let whole = [first, second].iter().filter(|&&end| end <= cut).count();
        assert_eq!(tail.frames, whole, "cut at {cut}");
        let boundary = cut == HEADER_LEN as usize || cut == first || cut == second;
        assert_eq!(tail.torn.is_some(), !boundary, "cut at {cut}");
        let expected = match whole {
            0 => None,
            1 => Some(Some(node(11, NodeState::Suspect))),
            _ => Some(Some(node(11, NodeState::Dirty))),
        };
        assert_eq!(folded.nodes.get(&(9, 1)).cloned(), expected, "cut at {cut}");
    }
}

#[test]
fn every_flipped_byte_is_damage_or_a_torn_tail_never_a_wrong_replay() {
    let (bytes, [first, second]) = two_frames();
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x20;
        let (tail, folded) = read_bytes(&bad);
        match tail {
            // The header (its checksum covers the generation) or the first frame's body.
            Err(_) => assert!(at < first, "flip at {at} in the last frame is torn"),
            Ok(None) => panic!("flip at {at}: the journal was taken for another generation's"),
            Ok(Some(tail)) => {
                // A torn tail: the first frame's length, or anything in the last frame.
                assert!(tail.torn.is_some(), "flip at {at} went unnoticed");
                assert!(at >= HEADER_LEN as usize && at < second);
                let expected = match tail.frames {
                    0 => None,
                    _ => Some(Some(node(11, NodeState::Suspect))),
                };
                assert_eq!(folded.nodes.get(&(9, 1)).cloned(), expected, "flip at {at}");
                if at >= first + FRAME_HEAD {
                    assert_eq!(tail.frames, 1, "flip at {at}: the first frame stays");
                }
            }
        }
    }
}

#[test]
fn hostile_bodies_are_refused_before_anything_is_reserved() {
    // A removed-node count far beyond the bytes left.
    let mut body = vec![KIND_CHANGES];
    for _ in 0..3 {
        body.extend_from_slice(&0u32.to_le_bytes());
    }
    put_u64(&mut body, 0);
    put_u64(&mut body, u64::MAX);
    assert!(decode_body(&body).unwrap_err().contains("counts"));
    // An unknown kind, an empty body, bytes after the last record.
    assert!(decode_body(&[2]).unwrap_err().contains("kind"));
    assert!(decode_body(&[]).is_err());
    let mut trailing = body[..body.len() - 8].to_vec();
    put_u64(&mut trailing, 0);
    trailing.push(0);
    assert!(decode_body(&trailing).unwrap_err().contains("follow"));
}
