//! The snapshots `crash_writer` saves, and the check that a file holds exactly one of them.

/// The manager and cache the crash writer uses.
pub const MANAGER: &str = "crash";
/// The cache the crash writer saves in a loop.
pub const CACHE: &str = "snapshots";

/// The smallest journal the crash writer compacts in the background: a snapshot holds at
/// most 1,024 rows of 13 bytes or so, so compactions start every few saves.
pub const COMPACT_FROM: u64 = 4096;

/// Keys per step; snapshot `i` holds `batch_len(i)` keys.
const BATCH: u32 = 64;
/// Snapshot lengths cycle through this many steps, so the file stays small however long the
/// writer runs, and shrinking snapshots are tested too.
const STEPS: u64 = 16;

/// How many keys snapshot `i` holds: `0..batch_len(i)`.
pub fn batch_len(i: u64) -> u32 {
    (i % STEPS + 1) as u32 * BATCH
}

/// The value of `key` in snapshot `i`: both are recoverable from it.
pub fn snapshot_value(i: u64, key: u32) -> u64 {
    (i << 32) | u64::from(key)
}

/// Which snapshot `rows` is: `Ok(None)` for no rows, `Err` with the reason when the rows are
/// not exactly one complete snapshot.
pub fn snapshot_of(rows: &[(u32, u64)]) -> Result<Option<u64>, String> {
    let Some(&(_, first)) = rows.first() else {
        return Ok(None);
    };
    let i = first >> 32;
    if rows.len() != batch_len(i) as usize {
        return Err(format!(
            "{} rows, but snapshot {i} has {}",
            rows.len(),
            batch_len(i)
        ));
    }
    // Distinct keys (they come from a map), each below the length and with this snapshot's
    // value, are exactly the keys 0..len.
    for &(key, value) in rows {
        if key >= batch_len(i) || value != snapshot_value(i, key) {
            return Err(format!(
                "key {key} holds {value:#x}, which is not snapshot {i}'s value {:#x}",
                snapshot_value(i, key)
            ));
        }
    }
    Ok(Some(i))
}

/// How many kills a crash harness makes: `CACHEMAN_CRASH_KILLS`, else `default`.
pub fn kills_from_env(default: u32) -> u32 {
    std::env::var("CACHEMAN_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// The seed of a crash harness's kill instants: `CACHEMAN_CRASH_SEED` (to replay a failure),
/// else one drawn from the clock (made odd, so never the zero state `XorShift` cannot leave).
pub fn seed_from_env() -> u64 {
    std::env::var("CACHEMAN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        })
}

/// Starts the crash writer `writer` on `dir`, waits until it is ready, lets it run for
/// `delay`, and kills it with `SIGKILL`.
pub fn run_and_kill(writer: &str, dir: &std::path::Path, delay: std::time::Duration) {
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(writer)
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ready = crate::child::Lines::of(&mut child).next(&mut child);
    assert_eq!(ready, "ready", "the writer failed to start");
    // The delay is what makes the kill instant random, not a wait for something to happen.
    std::thread::sleep(delay);
    child.kill().unwrap();
    let status = crate::child::wait(&mut child, "the killed writer");
    assert_eq!(
        status.signal(),
        Some(9),
        "the writer stopped by itself ({status}) before it was killed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(i: u64) -> Vec<(u32, u64)> {
        (0..batch_len(i))
            .map(|k| (k, snapshot_value(i, k)))
            .collect()
    }

    #[test]
    fn a_complete_snapshot_is_recognised() {
        assert_eq!(snapshot_of(&snapshot(17)), Ok(Some(17)));
        assert_eq!(snapshot_of(&[]), Ok(None));
    }

    #[test]
    fn mixed_or_partial_snapshots_are_refused() {
        let mut partial = snapshot(3);
        partial.pop();
        assert!(snapshot_of(&partial).is_err());
        let mut mixed = snapshot(3);
        mixed[5].1 = snapshot_value(2, 5);
        assert!(snapshot_of(&mixed).is_err());
        let mut swapped = snapshot(3);
        swapped[5].1 = snapshot_value(3, 6);
        assert!(snapshot_of(&swapped).is_err());
    }
}
