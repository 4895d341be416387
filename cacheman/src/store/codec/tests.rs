//! The codecs' tests: round trips in every row layout, and hostile payloads.
use super::*;

const ALL: [Codec; 3] = [Codec::Postcard, Codec::Json, Codec::Csv];

#[test]
fn every_codec_round_trips_flat_rows() {
    let rows = vec![(1u64, "one".to_string()), (2, "two, with a comma".into())];
    for codec in ALL {
        let bytes = codec.encode(&rows, 0).unwrap();
        let back: Vec<(u64, String)> = codec.decode(&bytes).unwrap();
        assert_eq!(back, rows, "{codec:?}");
    }
}

#[test]
fn garbage_is_an_error_for_every_codec() {
    for codec in ALL {
        let garbage = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0x0f, b'"', b','];
        assert!(
            codec.decode::<(u64, String)>(&garbage).is_err(),
            "{codec:?}"
        );
    }
}

/// Every layout a file has had: unsized rows (versions 1 to 3), sized ones (4), with or
/// without stamps, and sized ones with use counts.
const LAYOUTS: [Layout; 6] = {
    const fn layout(stamped: bool, sized: bool, counted: bool) -> Layout {
        Layout {
            stamped,
            sized,
            counted,
        }
    }
    [
        layout(false, false, false),
        layout(true, false, false),
        layout(false, true, false),
        layout(true, true, false),
        layout(false, true, true),
        layout(true, true, true),
    ]
};

#[test]
fn rows_encoded_as_the_snapshot_is_taken_are_the_bytes_serde_writes() {
    let rows: Vec<(u64, Vec<u8>, RowMeta)> = (0..300)
        .map(|i| {
            let meta = RowMeta {
                stamp_ms: i * 1_000,
                uses: (i % 4) as u8,
            };
            (i, (0..i as u8).collect(), meta)
        })
        .collect();
    for layout in LAYOUTS {
        let mut encoder = PostcardRows::<u64, Vec<u8>>::new("c", layout, 0);
        for (k, v, meta) in &rows {
            encoder.put(k, v, *meta).unwrap();
        }
        // Rows back to back, without the sequence's count; unsized, serde's tuples;
        // sized, the value's length in front of it; counted, the count at the end.
        let row_by_row: Vec<u8> = rows
            .iter()
            .flat_map(|(k, v, meta)| {
                let value = postcard::to_allocvec(v).unwrap();
                let mut row = postcard::to_allocvec(k).unwrap();
                if layout.sized {
                    row.extend(postcard::to_allocvec(&(value.len() as u64)).unwrap());
                }
                row.extend(value);
                if layout.stamped {
                    row.extend(postcard::to_allocvec(&meta.stamp_ms).unwrap());
                }
                if layout.counted {
                    row.push(meta.uses);
                }
                row
            })
            .collect();
        assert_eq!(encoder.bytes(), &row_by_row[..], "{layout:?}");
        if !layout.sized {
            let tuples: Vec<u8> = rows
                .iter()
                .flat_map(|(k, v, meta)| match layout.stamped {
                    true => postcard::to_allocvec(&(k, v, meta.stamp_ms)).unwrap(),
                    false => postcard::to_allocvec(&(k, v)).unwrap(),
                })
                .collect();
            assert_eq!(encoder.bytes(), &tuples[..], "{layout:?}");
        }
        assert_eq!(encoder.rows(), 300);
        let back: Vec<(u64, Vec<u8>, RowMeta)> =
            decode_postcard_rows(encoder.bytes(), Some(300), layout).unwrap();
        let want: Vec<_> = rows
            .iter()
            .map(|(k, v, meta)| {
                let meta = RowMeta {
                    stamp_ms: if layout.stamped { meta.stamp_ms } else { 0 },
                    uses: if layout.counted { meta.uses } else { 0 },
                };
                (*k, v.clone(), meta)
            })
            .collect();
        assert_eq!(back, want, "{layout:?}");
        if layout.sized {
            continue;
        }
        // Version 1 files: the same rows as one sequence, its count first.
        let sequence = match layout.stamped {
            true => {
                let rows: Vec<_> = rows.iter().map(|(k, v, m)| (k, v, m.stamp_ms)).collect();
                Codec::Postcard.encode(&rows, 0).unwrap()
            }
            false => {
                let pairs: Vec<_> = rows.iter().map(|(k, v, _)| (k, v)).collect();
                Codec::Postcard.encode(&pairs, 0).unwrap()
            }
        };
        let back: Vec<(u64, Vec<u8>, RowMeta)> =
            decode_postcard_rows(&sequence, None, layout).unwrap();
        assert_eq!(back, want);
    }
}

#[test]
fn superseded_rows_are_left_out_and_sized_values_not_decoded() {
    let sized = Layout::current(false, false);
    let mut encoder = PostcardRows::<u64, String>::new("c", sized, 0);
    for k in 0..3 {
        encoder
            .put(&k, &format!("value {k}"), RowMeta::default())
            .unwrap();
    }
    let mut bytes = encoder.bytes().to_vec();
    // Row 1's value ("value 1", after its key and length) made invalid UTF-8.
    let at = bytes.windows(7).position(|w| w == b"value 1").unwrap();
    bytes[at] = 0xff;
    let kept = decode_postcard_rows_except::<u64, String>(&bytes, 3, sized, |k| *k == 1);
    let keys: Vec<u64> = kept.unwrap().into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(keys, vec![0, 2]);
    // Read, it does not decode.
    assert!(decode_postcard_rows_except::<u64, String>(&bytes, 3, sized, |_| false).is_err());
}

#[test]
fn a_value_length_that_is_not_the_values_is_an_error() {
    let sized = Layout::current(false, false);
    // Key 1, a length of 3, then a 2-byte string ("ab") and one byte more.
    let longer = [1, 3, 2, b'a', b'b', 0];
    // Key 1, a length of 1, then the same string.
    let shorter = [1, 1, 2, b'a', b'b'];
    for bytes in [&longer[..], &shorter[..]] {
        for skip in [false, true] {
            let decoded = decode_postcard_rows_except::<u64, String>(bytes, 1, sized, |_| skip);
            assert!(decoded.is_err(), "{bytes:?} read, skipping: {skip}");
        }
    }
    // A length past the payload's end.
    let past = [1, 0x80, 0x80, 0x40, b'a'];
    assert!(decode_postcard_rows::<u64, String>(&past, Some(1), sized).is_err());
}

#[test]
fn counted_rows_must_be_exactly_the_payload() {
    for layout in LAYOUTS {
        let mut encoder = PostcardRows::<u64, String>::new("c", layout, 0);
        for k in 0..3 {
            encoder
                .put(&k, &format!("value {k}"), RowMeta::default())
                .unwrap();
        }
        let bytes = encoder.bytes();
        assert!(decode_postcard_rows::<u64, String>(bytes, Some(3), layout).is_ok());
        for wrong in [0, 2, 4, u64::MAX] {
            let decoded = decode_postcard_rows::<u64, String>(bytes, Some(wrong), layout);
            assert!(decoded.is_err(), "count {wrong} accepted, {layout:?}");
        }
    }
}

#[test]
fn a_byte_vector_claiming_more_bytes_than_the_payload_fails_cleanly() {
    // One row: key 1, then a value claiming 2^20 bytes with three present.
    let bytes = [1, 0x80, 0x80, 0x40, 1, 2, 3];
    let unsized_rows = LAYOUTS[0];
    assert!(decode_postcard_rows::<u64, Vec<u8>>(&bytes, Some(1), unsized_rows).is_err());
    // The same in a version 1 payload, after its row count.
    let bytes = [1, 1, 0x80, 0x80, 0x40, 1, 2, 3];
    assert!(decode_postcard_rows::<u64, Vec<u8>>(&bytes, None, unsized_rows).is_err());
    // And sized, inside a value of the right length.
    let bytes = [1, 6, 0x80, 0x80, 0x40, 1, 2, 3];
    let sized = Layout::current(false, false);
    assert!(decode_postcard_rows::<u64, Vec<u8>>(&bytes, Some(1), sized).is_err());
}

#[test]
fn a_huge_postcard_length_prefix_fails_cleanly() {
    // A varint claiming 2^62 entries followed by nothing.
    let bytes = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40];
    assert!(Codec::Postcard.decode::<(u64, u64)>(&bytes).is_err());
}
