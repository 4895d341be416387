//! The fuzz targets' seeds (`fuzz/seeds/decode_file`: valid inputs of every row kind;
//! `fuzz/seeds/decode_graph`: valid graph files and graph journals of a few sizes; `fuzz/seeds/decode_journal`:
//! valid journals of a few frames), in both of each target's modes, stay valid when the file formats or the kinds change:
//! `cargo test -p tests --test fuzz_seeds -- --ignored` writes them anew.

use std::path::PathBuf;

use cacheman::__fuzz::{
    KINDS, decode_as, decode_graph, decode_graph_journal, decode_journal, file_for, graph_file_for,
    graph_frame_body_for, graph_frame_for, graph_journal_for, graph_payload_for, journal_file_for,
    journal_frames_for, payload_for,
};

const ROW_COUNTS: [u8; 3] = [0, 1, 3];

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/decode_file")
}

fn graph_seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/decode_graph")
}

fn journal_seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/decode_journal")
}

/// (file name, bytes, keys named) of every journal seed. The first byte is the fuzz target's
/// mode: bit 7 a whole journal, else frames after a header that passes every check (see
/// `fuzz/fuzz_targets/decode_journal.rs`).
fn journal_seeds() -> Vec<(String, Vec<u8>, usize)> {
    let frames = [
        (vec![(1, "one".to_string()), (2, "two".into())], vec![]),
        (vec![(3, "three".into())], vec![1]),
        (vec![], vec![2, 3]),
    ];
    let mut seeds = Vec::new();
    for count in [0, 1, 3] {
        let frames = journal_frames_for(&frames[..count]);
        // Each frame names two keys.
        let named = 2 * count;
        let mut wrapped = vec![0];
        wrapped.extend_from_slice(&frames);
        let mut whole = vec![0x80];
        whole.extend_from_slice(&journal_file_for(&frames));
        seeds.push((format!("frames-{count}"), wrapped, named));
        seeds.push((format!("file-frames-{count}"), whole, named));
    }
    seeds
}

#[test]
fn every_journal_seed_decodes_as_its_name_says_and_is_up_to_date() {
    for (name, bytes, named) in journal_seeds() {
        let (mode, rest) = bytes.split_first().unwrap();
        let file = match mode & 0x80 {
            0 => journal_file_for(rest),
            _ => rest.to_vec(),
        };
        assert_eq!(decode_journal(&file), Ok(named), "{name}");
        let committed = std::fs::read(journal_seed_dir().join(&name)).unwrap_or_default();
        assert!(
            committed == bytes,
            "fuzz/seeds/decode_journal/{name} is out of date: run \
             `cargo test -p tests --test fuzz_seeds -- --ignored` to write the seeds anew"
        );
    }
}

/// (file name, bytes, nodes) of every graph seed. The first byte is the fuzz target's mode:
/// bit 7 a whole file, else a payload wrapped in a header that passes every check (see
/// `fuzz/fuzz_targets/decode_graph.rs`).
fn graph_seeds() -> Vec<(String, Vec<u8>, usize)> {
    let mut seeds = Vec::new();
    for nodes in [0u64, 1, 3] {
        let payload = graph_payload_for(nodes);
        let mut wrapped = vec![0];
        wrapped.extend_from_slice(&payload);
        let mut whole = vec![0x80];
        whole.extend_from_slice(&graph_file_for(&payload));
        seeds.push((format!("payload-nodes{nodes}"), wrapped, nodes as usize));
        seeds.push((format!("file-nodes{nodes}"), whole, nodes as usize));
        // The graph journal: a frame's body (its nodes and one removed), frames after a valid
        // header, and a whole journal, each naming the same nodes.
        let body = graph_frame_body_for(nodes);
        let mut frames = graph_frame_for(&body);
        frames.extend(graph_frame_for(&body));
        let journal = graph_journal_for(&graph_frame_for(&body));
        for (kind, mode, bytes) in [
            ("body", 0x60, body),
            ("frames", 0x40, frames),
            ("file", 0xc0, journal),
        ] {
            let mut seed = vec![mode];
            seed.extend_from_slice(&bytes);
            seeds.push((
                format!("journal-{kind}-nodes{nodes}"),
                seed,
                nodes as usize + 1,
            ));
        }
    }
    seeds
}

#[test]
fn every_graph_seed_decodes_as_its_name_says_and_is_up_to_date() {
    for (name, bytes, nodes) in graph_seeds() {
        let (mode, rest) = bytes.split_first().unwrap();
        let decoded = match (mode & 0x80 != 0, mode & 0x40 != 0, mode & 0x20 != 0) {
            (false, false, _) => decode_graph(&graph_file_for(rest)),
            (true, false, _) => decode_graph(rest),
            (true, true, _) => decode_graph_journal(rest),
            (false, true, true) => decode_graph_journal(&graph_journal_for(&graph_frame_for(rest))),
            (false, true, false) => decode_graph_journal(&graph_journal_for(rest)),
        };
        assert_eq!(decoded, Ok(nodes), "{name}");
        let committed = std::fs::read(graph_seed_dir().join(&name)).unwrap_or_default();
        assert!(
            committed == bytes,
            "fuzz/seeds/decode_graph/{name} is out of date: run \
             `cargo test -p tests --test fuzz_seeds -- --ignored` to write the seeds anew"
        );
    }
}

/// (file name, bytes, kind, rows) of every seed. The first byte is the fuzz target's mode:
/// bits 0-2 the kind, bit 7 a whole file, else bits 3-6 the entry count of the header that
/// wraps the payload (see `fuzz/fuzz_targets/decode_file.rs`).
fn seeds() -> Vec<(String, Vec<u8>, u8, usize)> {
    let names = ["one", "two", "three"];
    let mut seeds = Vec::new();
    for kind in 0..KINDS {
        for rows in ROW_COUNTS {
            let data: Vec<(u64, String)> = (0..usize::from(rows))
                .map(|i| (i as u64 + 1, names[i].to_string()))
                .collect();
            let payload = payload_for(kind, &data);
            let mut wrapped = vec![kind | rows << 3];
            wrapped.extend_from_slice(&payload);
            let mut whole = vec![0x80 | kind];
            whole.extend_from_slice(&file_for(kind, u64::from(rows), &payload));
            let name = |mode| format!("{mode}-kind{kind}-rows{rows}");
            seeds.push((name("payload"), wrapped, kind, usize::from(rows)));
            seeds.push((name("file"), whole, kind, usize::from(rows)));
        }
    }
    seeds
}

#[test]
fn every_seed_decodes_as_its_name_says_and_is_up_to_date() {
    for (name, bytes, kind, rows) in seeds() {
        let (mode, rest) = bytes.split_first().unwrap();
        let file = match mode & 0x80 {
            0 => file_for(kind, u64::from(mode >> 3 & 0x0f), rest),
            _ => rest.to_vec(),
        };
        assert_eq!(decode_as(kind, &file), Ok(rows), "{name}");
        let committed = std::fs::read(seed_dir().join(&name)).unwrap_or_default();
        assert!(
            committed == bytes,
            "fuzz/seeds/decode_file/{name} is out of date: run \
             `cargo test -p tests --test fuzz_seeds -- --ignored` to write the seeds anew"
        );
    }
}

#[test]
#[ignore = "writes fuzz/seeds/; run by hand when a format or the kinds change"]
fn write_seeds() {
    let graph_seeds = graph_seeds()
        .into_iter()
        .map(|(name, bytes, _)| (name, bytes));
    let file_seeds = seeds().into_iter().map(|(name, bytes, _, _)| (name, bytes));
    let journal_seeds = journal_seeds()
        .into_iter()
        .map(|(name, bytes, _)| (name, bytes));
    for (dir, seeds) in [
        (seed_dir(), file_seeds.collect::<Vec<_>>()),
        (graph_seed_dir(), graph_seeds.collect()),
        (journal_seed_dir(), journal_seeds.collect()),
    ] {
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
