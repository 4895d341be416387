//! Per-entry dependencies kept on the server, so that they reach every host: when a
//! computation that read entries of caches on the same server lands, each entry it read
//! records it in a set of readers (`<base>:r:<key>`, in the read entry's slot), after checking
//! that the entry still has the stamp the computation saw; invalidating an entry removes it
//! and, one script per entry (each in its own slot on a Cluster), the readers recorded of it,
//! transitively. Each entry also has a version (`<base>:ver:<key>`) that an invalidation
//! moves: a computation of it that started before (its ticket holds the version it saw)
//! does not land.
//!
//! Why the order makes it safe without one atomic step: a reader records itself in the read
//! entry's slot and checks its stamp in the same script, then puts its value with the version
//! it saw. An invalidation of the read entry either runs before that script (the check fails,
//! the reader is not stored) or after it (it takes the reader from the set and moves the
//! reader's version, so the put fails, or removes the value the put stored).

use std::collections::{HashSet, VecDeque};

use super::scripts;
use super::server::Server;

/// How long an entry's version outlives its last invalidation: longer than any computation
/// of it (a version that expired reads as 0 again, which a computation that started before
/// the invalidation may have seen).
pub(crate) const VERSION_KEPT_MS: u64 = 24 * 60 * 60 * 1000;

/// The keys of one entry on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryKeys {
    /// `<prefix>:{<manager>:<cache>}:<fingerprints>:`: what its value and lease keys start with.
    pub entries: String,
    /// The key's stable hash, 16 hex digits.
    pub hash: String,
}

/// `:<32 hex digits of fingerprints>:` at the end of an entries prefix.
const FINGERPRINTS_LEN: usize = 34;

impl EntryKeys {
    pub(crate) fn new(entries: &str, hash: u64) -> Self {
        EntryKeys {
            entries: entries.to_owned(),
            hash: format!("{hash:016x}"),
        }
    }

    /// The entry a member of a readers set names (`None`: not one cacheman wrote).
    fn of_member(member: &[u8]) -> Option<Self> {
        let member = std::str::from_utf8(member).ok()?;
        let split = member.len().checked_sub(16)?;
        let (entries, hash) = (member.get(..split)?, member.get(split..)?);
        let well_formed = hash.bytes().all(|b| b.is_ascii_hexdigit())
            && entries.len() > FINGERPRINTS_LEN
            && entries.ends_with(':')
            && entries
                .get(..entries.len() - FINGERPRINTS_LEN)
                .is_some_and(|base| base.ends_with('}'));
        well_formed.then(|| EntryKeys {
            entries: entries.to_owned(),
            hash: hash.to_owned(),
        })
    }

    /// What a readers set holds for this entry.
    pub(crate) fn member(&self) -> String {
        format!("{}{}", self.entries, self.hash)
    }

    /// `<prefix>:{<manager>:<cache>}`.
    pub(crate) fn base(&self) -> &str {
        &self.entries[..self.entries.len() - FINGERPRINTS_LEN]
    }

    pub(crate) fn generation(&self) -> String {
        format!("{}:gen", self.base())
    }

    pub(crate) fn channel(&self) -> String {
        format!("{}:inv", self.base())
    }

    pub(crate) fn version(&self) -> String {
        format!("{}:ver:{}", self.base(), self.hash)
    }

    pub(crate) fn readers(&self) -> String {
        format!("{}:r:{}", self.base(), self.hash)
    }
}

/// Records `reader` among the readers of `read`, if `read` still has `stamp`. `Ok(false)`:
/// it does not (the reader is stale).
pub(crate) fn record_read(
    server: &Server,
    read: &EntryKeys,
    stamp: u64,
    reader: &EntryKeys,
    reader_ttl_ms: u64,
) -> Result<bool, String> {
    server.run(|c| {
        scripts::RECORD_READ
            .key(read.generation())
            .arg(&read.entries)
            .arg(&read.hash)
            .arg(&stamp.to_le_bytes()[..])
            .arg(read.readers())
            .arg(reader.member())
            .arg(reader_ttl_ms)
            .arg(super::reader_caches::key(read.base()))
            .arg(reader.base())
            .invoke::<i64>(c)
            .map(|recorded| recorded == 1)
    })
}

/// Invalidates `start` (their values removed, versions moved, channels told) and every
/// reader recorded of them, transitively; each entry once. Stops at the first failure.
pub(crate) fn invalidate(server: &Server, start: Vec<EntryKeys>) -> Result<(), String> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<EntryKeys> = start.into();
    while let Some(entry) = queue.pop_front() {
        if !seen.insert(entry.member()) {
            continue;
        }
        let readers: Vec<Vec<u8>> = server.run(|c| {
            scripts::INVALIDATE_ENTRY
                .key(entry.generation())
                .arg(&entry.entries)
                .arg(&entry.hash)
                .arg(entry.channel())
                .arg(entry.version())
                .arg(entry.readers())
                .arg(VERSION_KEPT_MS)
                .invoke(c)
        })?;
        queue.extend(readers.iter().filter_map(|m| EntryKeys::of_member(m)));
    }
    Ok(())
}

/// The entries named by members of a readers set.
pub(crate) fn entries_of(members: &[Vec<u8>]) -> Vec<EntryKeys> {
    members
        .iter()
        .filter_map(|m| EntryKeys::of_member(m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::EntryKeys;

    #[test]
    fn a_member_names_the_keys_of_its_entry() {
        let entries = format!("cacheman:{{m:derived}}:{}:", "ab".repeat(16));
        let keys = EntryKeys::new(&entries, 0x1234);
        let back = EntryKeys::of_member(keys.member().as_bytes()).unwrap();
        assert_eq!(back, keys);
        assert_eq!(back.generation(), "cacheman:{m:derived}:gen");
        assert_eq!(back.channel(), "cacheman:{m:derived}:inv");
        assert_eq!(back.version(), "cacheman:{m:derived}:ver:0000000000001234");
        assert_eq!(back.readers(), "cacheman:{m:derived}:r:0000000000001234");
        for hostile in [
            "",
            "short",
            "cacheman:{m:c}:zz:0000000000001234",
            "ü".repeat(40).as_str(),
        ] {
            assert_eq!(
                EntryKeys::of_member(hostile.as_bytes()),
                None,
                "{hostile:?}"
            );
        }
    }
}
