//! What [`Cache::explain`](crate::Cache::explain) returns: an entry's recorded inputs and
//! whether each is still what the entry read.

use std::fmt;
use std::path::PathBuf;

use super::Source;
use super::graph::EntryGraph;
use super::input::FileState;
use super::state::{NodeId, NodeState};

impl EntryGraph {
    /// Why entry `id` of cache `cache` is or is not served.
    pub(crate) fn explain(&self, cache: &str, id: NodeId) -> Explanation {
        let state = self.lock();
        let Some(node) = state.nodes.get(&id) else {
            return Explanation {
                cache: cache.to_owned(),
                key_hash: id.1,
                staleness: Staleness::Unrecorded,
                inputs: Vec::new(),
            };
        };
        let inputs = node
            .inputs
            .iter()
            .map(|input| {
                let now = match input.source {
                    Source::FILES => state
                        .files
                        .get(&input.key)
                        .map(|f| FileState::read(&f.path, Some(f)).stamp),
                    _ => state.current(input),
                };
                let from = match input.source {
                    Source::FILES => InputSource::File(
                        state
                            .files
                            .get(&input.key)
                            .map_or_else(PathBuf::new, |f| f.path.clone()),
                    ),
                    Source::VALUES => InputSource::Value(
                        state
                            .values
                            .get(&input.key)
                            .map_or_else(String::new, |v| v.0.clone()),
                    ),
                    cache => InputSource::Entry {
                        cache: state.cache_name(cache),
                        key_hash: input.key,
                    },
                };
                InputReport {
                    from,
                    seen: input.seen,
                    now,
                    changed: now != Some(input.seen),
                }
            })
            .collect();
        Explanation {
            cache: cache.to_owned(),
            key_hash: id.1,
            staleness: match node.state {
                NodeState::Clean => Staleness::Fresh,
                NodeState::Suspect => Staleness::Suspect,
                NodeState::Dirty => Staleness::Dirty,
            },
            inputs,
        }
    }
}

/// Why an entry is or is not served: what [`Cache::explain`](crate::Cache::explain) returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The cache's name.
    pub cache: String,
    /// The stable hash of the key, as recorded by the entries that read it.
    pub key_hash: u64,
    /// Whether the entry may be served.
    pub staleness: Staleness,
    /// What the entry read while it was computed, in a stable order.
    pub inputs: Vec<InputReport>,
}

impl Explanation {
    /// The inputs whose stamp is not the one the entry read.
    pub fn changed_inputs(&self) -> impl Iterator<Item = &InputReport> {
        self.inputs.iter().filter(|i| i.changed)
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "entry #{:016x} of cache `{}`: {}",
            self.key_hash, self.cache, self.staleness
        )?;
        for input in &self.inputs {
            let mark = if input.changed { "changed" } else { "same" };
            writeln!(f, "  read {} ({mark})", input.from)?;
        }
        Ok(())
    }
}

/// Whether an entry may be served, as far as its recorded inputs tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
    /// Its inputs are as it read them.
    Fresh,
    /// Something it read changed: it is checked (and recomputed only if an input really
    /// differs) at its next lookup.
    Suspect,
    /// It was invalidated, or an input differs: it is recomputed at its next lookup.
    Dirty,
    /// Nothing was recorded for it (filled by hand, or computed without reading anything).
    Unrecorded,
}

impl fmt::Display for Staleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Staleness::Fresh => "fresh",
            Staleness::Suspect => "suspect (an input changed; checked at the next lookup)",
            Staleness::Dirty => "stale (recomputed at the next lookup)",
            Staleness::Unrecorded => "no recorded inputs",
        })
    }
}

/// One input of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputReport {
    /// What was read.
    pub from: InputSource,
    /// Its stamp when it was read.
    pub seen: u64,
    /// Its stamp now (`None`: invalidated, or no longer known).
    pub now: Option<u64>,
    /// Whether `now` differs from `seen`.
    pub changed: bool,
}

/// What an input was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// An entry of a cache of the same manager, by its key's stable hash.
    Entry {
        /// The cache's name.
        cache: String,
        /// The stable hash of the key.
        key_hash: u64,
    },
    /// A file recorded with [`track_file`](crate::track_file).
    File(PathBuf),
    /// A value recorded with [`track_value`](crate::track_value), by its label.
    Value(String),
}

impl fmt::Display for InputSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSource::Entry { cache, key_hash } => {
                write!(f, "entry #{key_hash:016x} of cache `{cache}`")
            }
            InputSource::File(path) => write!(f, "file {}", path.display()),
            InputSource::Value(label) => write!(f, "value `{label}`"),
        }
    }
}
