//! Whole-cache invalidations reaching the caches whose entries read the cache's, on every
//! host: when a reader lands, the read cache records the reader's cache in a set
//! (`<base>:rc`, in the read cache's slot, by the same script that checks the read entry's
//! stamp: `scripts::RECORD_READ`); invalidating the cache whole bumps its generation and
//! takes that set in one step, then bumps every cache in it, transitively, each taking its
//! own set. A reader cache is invalidated whole, not entry by entry: coarse, but the server
//! keeps no list of which entries of the old generation were read.
//!
//! Why no reader of the old generation stays: a reader records its cache in the same script
//! that checks its input's stamp in the input's current generation. If that script runs
//! before the bump, the bump finds the reader's cache and bumps it (the reader's put, which
//! names the generation its lease was taken in, then fails, or its stored value becomes
//! unreachable); if after, the input is not found in the new generation and the reader is
//! not stored.
//!
//! Order: a cache is bumped after the caches it was recorded as reading (read from the
//! server before the first bump; a cycle is broken in the order the caches were found), one
//! script per cache (each its own slot on a Cluster). A reader recomputed between its cache's
//! bump and its input's would otherwise land, from the input's old value, in the new
//! generation. A cache recorded by a reader that lands during the walk is bumped after the
//! ones planned.

use std::collections::{HashSet, VecDeque};

use super::scripts;
use super::server::Server;

/// The key of the set of caches that read entries of the cache whose keys start with `base`.
pub(crate) fn key(base: &str) -> String {
    format!("{base}:rc")
}

/// The cache a member of a reader-caches set names, `<prefix>:{<manager>:<cache>}` (`None`:
/// not one cacheman wrote).
fn of_member(member: &[u8]) -> Option<String> {
    let member = std::str::from_utf8(member).ok()?;
    (member.contains(":{") && member.ends_with('}')).then(|| member.to_owned())
}

fn cached(members: &[Vec<u8>]) -> Vec<String> {
    members.iter().filter_map(|m| of_member(m)).collect()
}

/// The caches recorded as reading `base`, without taking them.
fn readers_of(server: &Server, base: &str) -> Result<Vec<String>, String> {
    let members: Vec<Vec<u8>> = server.run(|c| redis::cmd("SMEMBERS").arg(key(base)).query(c))?;
    Ok(cached(&members))
}

/// The caches that read `base`'s entries, transitively (`base` left out), each after the
/// caches it was recorded as reading.
fn plan(server: &Server, base: &str) -> Result<Vec<String>, String> {
    // Found in breadth-first order, with the caches each is read by.
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::from([base.to_owned()]);
    let mut queue: VecDeque<String> = VecDeque::from([base.to_owned()]);
    while let Some(cache) = queue.pop_front() {
        let readers = readers_of(server, &cache)?;
        for reader in &readers {
            if seen.insert(reader.clone()) {
                queue.push_back(reader.clone());
            }
        }
        found.push((cache, readers));
    }
    Ok(order(base, &found))
}

/// `found` (each cache with its readers, `base` first) in an order where a cache comes after
/// every cache it reads; a cycle is broken in the order found.
fn order(base: &str, found: &[(String, Vec<String>)]) -> Vec<String> {
    let inputs_of = |cache: &str| -> Vec<&str> {
        found
            .iter()
            .filter(|(input, readers)| {
                input != base && input != cache && readers.iter().any(|r| r == cache)
            })
            .map(|(input, _)| input.as_str())
            .collect()
    };
    let mut left: Vec<(&str, Vec<&str>)> = found
        .iter()
        .map(|(cache, _)| cache.as_str())
        .filter(|cache| *cache != base)
        .map(|cache| (cache, inputs_of(cache)))
        .collect();
    let mut ordered: Vec<String> = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready = left
            .iter()
            .position(|(_, inputs)| inputs.iter().all(|i| ordered.iter().any(|o| o == i)))
            .unwrap_or(0); // a cycle: the first found
        ordered.push(left.remove(ready).0.to_owned());
    }
    ordered
}

/// Bumps `base`'s generation (telling its channel) and takes the caches recorded as reading
/// it.
fn bump(server: &Server, base: &str) -> Result<Vec<String>, String> {
    let members: Vec<Vec<u8>> = server.run(|c| {
        scripts::INVALIDATE_TAKING_READERS
            .key(format!("{base}:gen"))
            .arg(format!("{base}:inv"))
            .arg(key(base))
            .invoke(c)
    })?;
    Ok(cached(&members))
}

/// Invalidates the cache whose keys start with `base` whole, then every cache recorded on
/// the server as having read its entries, transitively; each once. Stops at the first
/// failure (`Err` after the cache's own bump: the readers not reached are left).
pub(crate) fn invalidate(server: &Server, base: &str) -> Result<(), String> {
    let planned = plan(server, base)?;
    let mut done: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<String> = VecDeque::from([base.to_owned()]);
    queue.extend(planned);
    while let Some(cache) = queue.pop_front() {
        if !done.insert(cache.clone()) {
            continue;
        }
        for reader in bump(server, &cache)? {
            if !done.contains(&reader) && !queue.contains(&reader) {
                queue.push_back(reader);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{of_member, order};

    fn found(edges: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        edges
            .iter()
            .map(|(cache, readers)| {
                let readers = readers.iter().map(|r| r.to_string()).collect();
                (cache.to_string(), readers)
            })
            .collect()
    }

    #[test]
    fn a_cache_is_bumped_after_every_cache_it_reads() {
        // x <- a <- b, and x <- b: found x, b, a; `b` reads `a`, so `a` comes first.
        let graph = found(&[("x", &["b", "a"]), ("b", &[]), ("a", &["b"])]);
        assert_eq!(order("x", &graph), ["a", "b"]);
        // A cycle (a <-> b) is broken in the order found; `x` reading itself changes nothing.
        let graph = found(&[("x", &["x", "b", "a"]), ("b", &["a"]), ("a", &["b"])]);
        assert_eq!(order("x", &graph), ["b", "a"]);
    }

    #[test]
    fn only_cache_bases_are_taken_from_a_set() {
        assert_eq!(
            of_member(b"cacheman:{m:derived}").as_deref(),
            Some("cacheman:{m:derived}")
        );
        for hostile in [&b""[..], b"derived", b"cacheman:{m:d", &[0xff, b'}']] {
            assert_eq!(of_member(hostile), None, "{hostile:?}");
        }
    }
}
