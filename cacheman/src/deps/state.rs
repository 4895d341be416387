//! The graph's state: nodes, reverse edges, tracked files and values, the caches it knows,
//! and the rules by which a change spreads (what it reaches, and how far).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::graph::Holder;
use super::input::{FileState, MISSING_FILE};
use super::{Input, Source};

pub(crate) type NodeId = (u64, u64);

/// The graph's maps: keys are hashes already, so a fast hasher (the caches' own) is enough.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, crate::shards::Hasher>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, crate::shards::Hasher>;

/// Whether an entry may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeState {
    /// Its inputs were as recorded when last looked at.
    Clean,
    /// Something it read (directly or not) changed: check its inputs before serving it.
    Suspect,
    /// It was invalidated itself, or an input is known to differ: recompute it.
    Dirty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// The stamp of the entry's value, which readers recorded.
    pub stamp: u64,
    pub state: NodeState,
    pub inputs: Box<[Input]>,
}

pub(crate) struct CacheInfo {
    pub(super) name: String,
    pub(super) fn_fingerprint: Option<u64>,
    /// Shared with the cache's [`CacheLink`](super::CacheLink): whether any node of the cache exists, so that a
    /// cache nobody reads does no graph work on inserts.
    pub(super) watched: Arc<AtomicBool>,
    pub(super) holder: Option<Weak<dyn Holder>>,
    pub(super) persistent: bool,
}

impl CacheInfo {
    pub(crate) fn new(name: &str) -> Self {
        CacheInfo {
            name: name.to_owned(),
            fn_fingerprint: None,
            watched: Arc::new(AtomicBool::new(false)),
            holder: None,
            persistent: false,
        }
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub(super) nodes: HashMap<NodeId, Node>,
    /// Reverse edges: a set per input, so that forgetting one reader of a much-read input is
    /// not a scan of all its readers.
    pub(super) readers: HashMap<NodeId, HashSet<NodeId>>,
    pub(super) files: HashMap<u64, FileState>,
    /// Label hash → (label, stamp).
    pub(super) values: HashMap<u64, (String, u64)>,
    pub(super) caches: HashMap<u64, CacheInfo>,
    /// Fingerprints recorded in the file (or by other processes), by cache id.
    pub(super) recorded_fingerprints: HashMap<u64, (String, u64)>,
    /// Node ids (and `(FILES, k)`, `(VALUES, k)`) this process changed since its last sync with
    /// the file: a merge keeps ours for these, the file's for the rest.
    pub(super) changed: HashSet<NodeId>,
    /// A fingerprint was recorded since the last sync.
    pub(super) fingerprints_changed: bool,
    /// Bumped (under the graph's lock) by every invalidation; read without it by a
    /// computation when it starts (see [`EntryGraph::generation`](super::EntryGraph)).
    pub(super) generation: Arc<AtomicU64>,
    /// The generation at which each dirty node was invalidated (not persisted): a
    /// computation that started before it is not recorded, as it may have read what the
    /// invalidation was about. Forgotten when the node is clean again.
    pub(super) dirtied_at: HashMap<NodeId, u64>,
    pub(super) loaded: bool,
}

/// Entries to take off their caches' hit paths, gathered under the graph's lock and applied
/// after it is let go (a cache's shard locks are never taken under it).
#[derive(Default)]
pub(crate) struct TakeOff {
    pub(super) by_cache: HashMap<u64, (HashSet<u64>, HashSet<u64>)>,
}

impl TakeOff {
    pub(super) fn dirty(&mut self, (cache, key): NodeId) {
        self.by_cache.entry(cache).or_default().0.insert(key);
    }

    pub(super) fn suspect(&mut self, (cache, key): NodeId) {
        self.by_cache.entry(cache).or_default().1.insert(key);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_cache.is_empty()
    }
}

impl State {
    /// What the graph knows of cache `name` (id `id`), made on first mention.
    pub(super) fn cache_info(&mut self, id: u64, name: &str) -> &mut CacheInfo {
        self.caches
            .entry(id)
            .or_insert_with(|| CacheInfo::new(name))
    }

    pub(super) fn watch(&mut self, cache: u64) {
        if let Some(info) = self.caches.get(&cache) {
            info.watched.store(true, Ordering::Release);
        }
    }

    pub(super) fn cache_name(&self, id: u64) -> String {
        self.caches
            .get(&id)
            .map(|c| c.name.clone())
            .or_else(|| self.recorded_fingerprints.get(&id).map(|c| c.0.clone()))
            .unwrap_or_else(|| format!("#{id:016x}"))
    }

    /// The stamp an input has now, if it has one.
    pub(super) fn current(&self, input: &Input) -> Option<u64> {
        match input.source {
            Source::FILES => self.files.get(&input.key).map(|f| f.stamp),
            Source::VALUES => self.values.get(&input.key).map(|v| v.1),
            _ => self
                .nodes
                .get(&input.node())
                .filter(|n| n.state == NodeState::Clean)
                .map(|n| n.stamp),
        }
    }

    pub(super) fn rebuild_readers(&mut self) {
        self.readers.clear();
        for (&id, node) in &self.nodes {
            for input in node.inputs.iter() {
                self.readers.entry(input.node()).or_default().insert(id);
            }
        }
    }

    pub(super) fn forget_reader(&mut self, reader: NodeId, inputs: &[Input]) {
        for input in inputs {
            if let Some(readers) = self.readers.get_mut(&input.node()) {
                readers.remove(&reader);
                if readers.is_empty() {
                    self.readers.remove(&input.node());
                }
            }
        }
    }

    /// Marks `id` dirty, keeping the stamp it had (for early cutoff).
    pub(super) fn dirty(&mut self, id: NodeId, stamp: Option<u64>) {
        let node = self.nodes.entry(id).or_insert_with(|| Node {
            stamp: stamp.unwrap_or(MISSING_FILE),
            state: NodeState::Dirty,
            inputs: Box::new([]),
        });
        node.state = NodeState::Dirty;
        if let Some(stamp) = stamp {
            node.stamp = stamp;
        }
        self.note_dirtied(id);
        self.changed.insert(id);
        self.watch(id.0);
    }

    /// Records that `id` was invalidated now: a computation of it that started before is
    /// not recorded.
    pub(super) fn note_dirtied(&mut self, id: NodeId) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.dirtied_at.insert(id, generation);
    }

    /// Makes every entry that read `from`, directly or not, suspect (dirty ones stay dirty).
    pub(super) fn spread(&mut self, from: NodeId, take_off: &mut TakeOff) {
        let mut seen = HashSet::default();
        seen.insert(from);
        let mut queue = VecDeque::from([from]);
        while let Some(id) = queue.pop_front() {
            let Some(readers) = self.readers.get(&id) else {
                continue;
            };
            for &reader in readers {
                if !seen.insert(reader) {
                    continue;
                }
                if let Some(node) = self.nodes.get_mut(&reader) {
                    if node.state == NodeState::Clean {
                        node.state = NodeState::Suspect;
                        self.changed.insert(reader);
                    }
                    match node.state {
                        NodeState::Dirty => take_off.dirty(reader),
                        _ => take_off.suspect(reader),
                    }
                }
                queue.push_back(reader);
            }
        }
    }

    /// A cache's function has fingerprint `fp` in this build: if the graph recorded another,
    /// every entry of the cache is invalidated, and what read them.
    pub(super) fn fingerprint_seen(
        &mut self,
        id: u64,
        name: &str,
        fp: u64,
        take_off: &mut TakeOff,
    ) {
        let recorded = self.recorded_fingerprints.insert(id, (name.to_owned(), fp));
        if recorded.is_some_and(|(_, old)| old != fp) {
            let roots: Vec<NodeId> = self.nodes.keys().filter(|n| n.0 == id).copied().collect();
            for root in roots {
                self.dirty(root, None);
                take_off.dirty(root);
                self.spread(root, take_off);
            }
        }
        self.fingerprints_changed = true;
    }

    pub(super) fn file_changed(&mut self, key: u64, now: FileState, take_off: &mut TakeOff) {
        let old = self.files.insert(key, now.clone());
        self.changed.insert((Source::FILES, key));
        if old.is_some_and(|old| old.stamp != now.stamp) {
            self.spread((Source::FILES, key), take_off);
        }
    }

    /// The names and fingerprints this process knows, for the graph file.
    pub(super) fn fingerprints(&self) -> Vec<(u64, String, u64)> {
        let mut all: HashMap<u64, (String, u64)> = self.recorded_fingerprints.clone();
        for (&id, info) in &self.caches {
            if let Some(fp) = info.fn_fingerprint {
                all.insert(id, (info.name.clone(), fp));
            }
        }
        all.into_iter().map(|(id, (n, fp))| (id, n, fp)).collect()
    }
}
