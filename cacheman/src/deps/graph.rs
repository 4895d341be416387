//! The entry graph of one manager: a node per entry that read something or was read, its
//! stamp, its inputs, and the reverse edges that invalidation follows. The one place that
//! decides what a change reaches, and where early cutoff happens.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::input::{FileState, MISSING_FILE};
use super::{Input, Source, stable_hash};
use crate::Error;

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

/// The outcome of checking an entry that was set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every input is as it was read: serve the entry without running its body.
    Fresh,
    /// Recompute it.
    Stale,
}

/// What a loaded cache lets the graph do to it: take entries off the hit path. Implemented by
/// the cache, handed down when the cache is linked, so that the graph never calls up.
pub(crate) trait Holder: Send + Sync {
    /// Drops the entries whose key hash is in `dirty` and sets aside those in `suspect` (to be
    /// checked at their next lookup).
    fn take_off(&self, dirty: &HashSet<u64>, suspect: &HashSet<u64>);
}

struct CacheInfo {
    name: String,
    fn_fingerprint: Option<u64>,
    /// Shared with the cache's [`CacheLink`]: whether any node of the cache exists, so that a
    /// cache nobody reads does no graph work on inserts.
    watched: Arc<AtomicBool>,
    holder: Option<Weak<dyn Holder>>,
    persistent: bool,
}

impl CacheInfo {
    fn new(name: &str) -> Self {
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
    readers: HashMap<NodeId, HashSet<NodeId>>,
    pub(super) files: HashMap<u64, FileState>,
    /// Label hash → (label, stamp).
    pub(super) values: HashMap<u64, (String, u64)>,
    caches: HashMap<u64, CacheInfo>,
    /// Fingerprints recorded in the file (or by other processes), by cache id.
    pub(super) recorded_fingerprints: HashMap<u64, (String, u64)>,
    /// Node ids (and `(FILES, k)`, `(VALUES, k)`) this process changed since its last sync with
    /// the file: a merge keeps ours for these, the file's for the rest.
    pub(super) changed: HashSet<NodeId>,
    /// A fingerprint was recorded since the last sync.
    pub(super) fingerprints_changed: bool,
    loaded: bool,
}

/// Entries to take off their caches' hit paths, gathered under the graph's lock and applied
/// after it is let go (a cache's shard locks are never taken under it).
#[derive(Default)]
pub(crate) struct TakeOff {
    by_cache: HashMap<u64, (HashSet<u64>, HashSet<u64>)>,
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

/// The per-entry dependencies of one manager's caches.
pub(crate) struct EntryGraph {
    manager: String,
    /// `<manager dir>/.graph.deps`.
    path: PathBuf,
    state: Mutex<State>,
    /// Serializes saves of the graph file within this process.
    save_lock: Mutex<()>,
    /// Stamps handed to values of caches that cannot hash them (memory caches).
    fresh: AtomicU64,
}

/// Every live graph, for [`track_value`](crate::track_value) outside a computation.
static GRAPHS: Mutex<Vec<Weak<EntryGraph>>> = Mutex::new(Vec::new());

/// Sets label `key`'s current stamp in every graph that knows the label.
pub(crate) fn set_value_everywhere(key: u64, label: &str, stamp: u64) {
    let graphs: Vec<Arc<EntryGraph>> = {
        let mut all = GRAPHS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|g| g.strong_count() > 0);
        all.iter().filter_map(Weak::upgrade).collect()
    };
    for graph in graphs {
        graph.ensure_loaded();
        let known = graph.lock().values.contains_key(&key);
        if known {
            graph.track_value(key, label, stamp);
        }
    }
}

/// A cache's handle on its manager's graph.
#[derive(Clone)]
pub(crate) struct CacheLink {
    pub graph: Arc<EntryGraph>,
    /// The cache's id in the graph.
    pub id: u64,
    watched: Arc<AtomicBool>,
}

impl CacheLink {
    /// Whether any entry of the cache has a node (was read, or read something).
    #[inline]
    pub(crate) fn watched(&self) -> bool {
        self.watched.load(Ordering::Acquire)
    }
}

fn lock_state(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every change to the state is made whole before the lock is let go.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl EntryGraph {
    /// The graph of the manager `manager` whose files live in `dir`. Nothing is read until a
    /// cache is linked.
    pub(crate) fn new(manager: &str, dir: &Path) -> Arc<Self> {
        let seed = crate::shards::Hasher::default();
        let graph = Arc::new(EntryGraph {
            manager: manager.to_owned(),
            path: dir.join(".graph.deps"),
            state: Mutex::new(State::default()),
            save_lock: Mutex::new(()),
            // A random start, so that two processes' fresh stamps do not meet.
            fresh: AtomicU64::new(std::hash::BuildHasher::hash_one(&seed, manager) | 1),
        });
        GRAPHS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&graph));
        graph
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock_state(&self.state)
    }

    /// A stamp never handed out before, for a value that cannot be hashed.
    pub(crate) fn fresh_stamp(&self) -> u64 {
        self.fresh.fetch_add(2, Ordering::Relaxed)
    }

    /// Reads the graph file once, then checks what it recorded against the present: changed
    /// function fingerprints and tracked files invalidate what they reach.
    pub(crate) fn ensure_loaded(&self) {
        let mut take_off = TakeOff::default();
        {
            let mut state = self.lock();
            if state.loaded {
                return;
            }
            state.loaded = true;
            match super::persist::read(&self.path) {
                Ok(Some(stored)) => stored.into_state(&mut state),
                Ok(None) => {}
                Err(err) => log::warn!(
                    "cacheman: {}",
                    Error::Corrupt {
                        cache: format!("(dependency graph of manager `{}`)", self.manager),
                        path: self.path.clone(),
                        reason: format!(
                            "{err}; recorded dependencies are lost, and entries computed \
                             before are served until their own caches are invalidated"
                        ),
                    }
                ),
            }
            state.rebuild_readers();
            let declared: Vec<(u64, String, u64)> = state
                .caches
                .iter()
                .filter_map(|(&id, info)| info.fn_fingerprint.map(|fp| (id, info.name.clone(), fp)))
                .collect();
            for (id, name, fp) in declared {
                state.fingerprint_seen(id, &name, fp, &mut take_off);
            }
            let files: Vec<u64> = state.files.keys().copied().collect();
            drop(state);
            for key in files {
                self.refresh_file(key, &mut take_off);
            }
        }
        self.apply(take_off);
    }

    /// Records that cache `name` is computed by a function with fingerprint `fingerprint`
    /// (a `#[cached]` declaration, known before the cache is opened). A fingerprint other than
    /// the recorded one invalidates every entry of the cache, and what read them.
    pub(crate) fn declare(&self, name: &str, fingerprint: u64) {
        let id = super::cache_id(name);
        let mut take_off = TakeOff::default();
        {
            let mut state = self.lock();
            let info = state
                .caches
                .entry(id)
                .or_insert_with(|| CacheInfo::new(name));
            info.fn_fingerprint = Some(fingerprint);
            if state.loaded {
                state.fingerprint_seen(id, name, fingerprint, &mut take_off);
            }
        }
        self.apply(take_off);
    }

    /// Links a cache being registered: its fingerprint is checked against the recorded one,
    /// and `holder` is how the graph takes its entries off the hit path.
    pub(crate) fn link(
        self: &Arc<Self>,
        name: &str,
        fingerprint: u64,
        persistent: bool,
        holder: Weak<dyn Holder>,
    ) -> CacheLink {
        self.ensure_loaded();
        let id = super::cache_id(name);
        let mut take_off = TakeOff::default();
        let watched = {
            let mut state = self.lock();
            let info = state
                .caches
                .entry(id)
                .or_insert_with(|| CacheInfo::new(name));
            info.fn_fingerprint = Some(fingerprint);
            info.holder = Some(holder);
            info.persistent = persistent;
            let watched = Arc::clone(&info.watched);
            state.fingerprint_seen(id, name, fingerprint, &mut take_off);
            if state.nodes.keys().any(|&(cache, _)| cache == id) {
                watched.store(true, Ordering::Release);
            }
            watched
        };
        self.apply(take_off);
        CacheLink {
            graph: Arc::clone(self),
            id,
            watched,
        }
    }

    /// Forgets the holder of a cache that is no longer registered.
    pub(crate) fn unlink(&self, id: u64) {
        if let Some(info) = self.lock().caches.get_mut(&id) {
            info.holder = None;
        }
    }

    /// The stamp of an entry being read inside a computation: its node's, or `stamp()` for an
    /// entry read for the first time (which then gets a node).
    pub(crate) fn stamp_for_read(&self, id: NodeId, stamp: impl FnOnce() -> u64) -> u64 {
        if let Some(node) = self.lock().nodes.get(&id)
            && node.state == NodeState::Clean
        {
            return node.stamp;
        }
        let stamp = stamp();
        let mut state = self.lock();
        match state.nodes.get_mut(&id) {
            Some(node) if node.state == NodeState::Clean => node.stamp,
            Some(node) => {
                // Served from memory although its node was not clean: a value stored since by
                // hand. It is what it is, with no inputs.
                node.state = NodeState::Clean;
                node.stamp = stamp;
                node.inputs = Box::new([]);
                state.changed.insert(id);
                stamp
            }
            None => {
                state.nodes.insert(
                    id,
                    Node {
                        stamp,
                        state: NodeState::Clean,
                        inputs: Box::new([]),
                    },
                );
                state.changed.insert(id);
                state.watch(id.0);
                stamp
            }
        }
    }

    /// Records a computed entry: its inputs and its stamp. Returns `false`, and records
    /// nothing, when an input changed while the entry was being computed: its value may be
    /// derived from what is no longer true, so it must not be stored.
    ///
    /// Early cutoff lives here: an entry recomputed to the stamp it had keeps it, so the
    /// entries that read it stay valid; another stamp makes them suspect.
    pub(crate) fn computed(&self, id: NodeId, inputs: Vec<Input>, stamp: u64) -> bool {
        let mut take_off = TakeOff::default();
        {
            let mut state = self.lock();
            if !inputs
                .iter()
                .all(|input| state.current(input) == Some(input.seen))
            {
                return false;
            }
            let old = state.nodes.remove(&id);
            if inputs.is_empty() && old.is_none() && !state.readers.contains_key(&id) {
                return true; // nothing read it, it read nothing: no node needed
            }
            if let Some(old) = &old {
                state.forget_reader(id, &old.inputs);
                if old.stamp != stamp {
                    state.spread(id, &mut take_off);
                }
            }
            for input in &inputs {
                state.readers.entry(input.node()).or_default().insert(id);
            }
            state.nodes.insert(
                id,
                Node {
                    stamp,
                    state: NodeState::Clean,
                    inputs: inputs.into_boxed_slice(),
                },
            );
            state.changed.insert(id);
            state.watch(id.0);
        }
        self.apply(take_off);
        true
    }

    /// An entry was stored or removed by hand (`insert`, `remove`): a node it had takes the
    /// new stamp (`None`: removed) and loses its inputs; the entries that read another stamp
    /// become suspect.
    pub(crate) fn replaced(&self, id: NodeId, stamp: Option<u64>) {
        let mut take_off = TakeOff::default();
        {
            let mut state = self.lock();
            let Some(old) = state.nodes.remove(&id) else {
                return;
            };
            state.forget_reader(id, &old.inputs);
            if Some(old.stamp) != stamp {
                state.spread(id, &mut take_off);
            }
            let node = Node {
                stamp: stamp.unwrap_or(old.stamp),
                state: if stamp.is_some() {
                    NodeState::Clean
                } else {
                    NodeState::Dirty
                },
                inputs: Box::new([]),
            };
            state.nodes.insert(id, node);
            state.changed.insert(id);
        }
        self.apply(take_off);
    }

    /// Forgets the inputs of entries of cache `cache` that are no longer held, and their nodes
    /// unless something read them (then the node stays, as the record of the stamp they read,
    /// so that a recomputation to another value still reaches them).
    pub(crate) fn forget(&self, cache: u64, keys: &[u64]) {
        let mut state = self.lock();
        for &key in keys {
            let id = (cache, key);
            let Some(node) = state.nodes.get_mut(&id) else {
                continue;
            };
            let inputs = std::mem::take(&mut node.inputs);
            state.forget_reader(id, &inputs);
            if !state.readers.contains_key(&id) {
                state.nodes.remove(&id);
            }
            state.changed.insert(id);
        }
    }

    /// Invalidates entries (each with the stamp of its value, if known, for early cutoff
    /// when it is recomputed) and, transitively, every entry that read them.
    pub(crate) fn invalidate(&self, roots: impl IntoIterator<Item = (NodeId, Option<u64>)>) {
        let mut take_off = TakeOff::default();
        {
            let mut state = self.lock();
            for (id, stamp) in roots {
                state.dirty(id, stamp);
                take_off.dirty(id);
                state.spread(id, &mut take_off);
            }
        }
        self.apply(take_off);
    }

    /// Invalidates every recorded entry of cache `id`, and what read them.
    pub(crate) fn invalidate_cache(&self, id: u64) {
        let roots: Vec<(NodeId, Option<u64>)> = self
            .lock()
            .nodes
            .keys()
            .filter(|node| node.0 == id)
            .map(|&node| (node, None))
            .collect();
        self.invalidate(roots);
    }

    /// Decides whether a set-aside entry can be served: its inputs, checked bottom-up, are
    /// what it read. Entries found fresh on the way become clean too.
    pub(crate) fn verify(&self, id: NodeId) -> Verdict {
        let mut take_off = TakeOff::default();
        let fresh = self.verify_node(id, &mut take_off, 0);
        self.apply(take_off);
        if fresh {
            Verdict::Fresh
        } else {
            Verdict::Stale
        }
    }

    fn verify_node(&self, id: NodeId, take_off: &mut TakeOff, depth: usize) -> bool {
        let inputs = {
            let state = self.lock();
            match state.nodes.get(&id) {
                None => return false,
                Some(node) => match node.state {
                    NodeState::Clean => return true,
                    NodeState::Dirty => return false,
                    NodeState::Suspect => node.inputs.clone(),
                },
            }
        };
        // Deep chains are checked without unbounded recursion: past a depth, recompute.
        let mut fresh = depth < 10_000;
        for input in inputs.iter() {
            if !fresh {
                break;
            }
            fresh = match input.source {
                Source::FILES => {
                    self.refresh_file(input.key, take_off);
                    self.lock().current(input) == Some(input.seen)
                }
                Source::VALUES => self.lock().current(input) == Some(input.seen),
                _ => {
                    self.verify_node(input.node(), take_off, depth + 1)
                        && self.lock().current(input) == Some(input.seen)
                }
            };
        }
        let mut state = self.lock();
        if let Some(node) = state.nodes.get_mut(&id)
            && node.state == NodeState::Suspect
        {
            node.state = if fresh {
                NodeState::Clean
            } else {
                NodeState::Dirty
            };
            state.changed.insert(id);
        }
        fresh
    }

    /// The node of a loaded entry, to decide whether to serve it.
    pub(crate) fn node(&self, id: NodeId) -> Option<(NodeState, u64)> {
        self.lock().nodes.get(&id).map(|n| (n.state, n.stamp))
    }

    /// Records the file at `path` as read now, and returns the input to record.
    pub(crate) fn track_file(&self, path: &Path) -> Input {
        self.ensure_loaded();
        let key = stable_hash(path);
        let mut take_off = TakeOff::default();
        let known = self.lock().files.get(&key).cloned();
        let now = FileState::read(path, known.as_ref());
        let stamp = now.stamp;
        {
            let mut state = self.lock();
            state.file_changed(key, now, &mut take_off);
        }
        self.apply(take_off);
        Input {
            source: Source::FILES,
            key,
            seen: stamp,
        }
    }

    /// Reads a tracked file's metadata again (and its contents if that changed); a change
    /// makes what read it suspect.
    fn refresh_file(&self, key: u64, take_off: &mut TakeOff) {
        let Some(known) = self.lock().files.get(&key).cloned() else {
            return;
        };
        let now = FileState::read(&known.path, Some(&known));
        if now != known {
            self.lock().file_changed(key, now, take_off);
        }
    }

    /// Looks at every tracked file again; what read a changed one is recomputed at its next
    /// lookup.
    pub(crate) fn check_files(&self) {
        self.ensure_loaded();
        let keys: Vec<u64> = self.lock().files.keys().copied().collect();
        let mut take_off = TakeOff::default();
        for key in keys {
            self.refresh_file(key, &mut take_off);
        }
        self.apply(take_off);
    }

    /// Sets label `key`'s stamp; returns the input to record.
    pub(crate) fn track_value(&self, key: u64, label: &str, stamp: u64) -> Input {
        self.ensure_loaded();
        let mut take_off = TakeOff::default();
        {
            let mut state = self.lock();
            let old = state.values.get(&key).map(|v| v.1);
            if old != Some(stamp) {
                state.values.insert(key, (label.to_owned(), stamp));
                state.changed.insert((Source::VALUES, key));
                if old.is_some() {
                    state.spread((Source::VALUES, key), &mut take_off);
                }
            }
        }
        self.apply(take_off);
        Input {
            source: Source::VALUES,
            key,
            seen: stamp,
        }
    }

    /// Takes entries off the hit paths of the caches that hold them.
    pub(crate) fn apply(&self, take_off: TakeOff) {
        if take_off.is_empty() {
            return;
        }
        type Work = (Arc<dyn Holder>, HashSet<u64>, HashSet<u64>);
        let holders: Vec<Work> = {
            let state = self.lock();
            take_off
                .by_cache
                .into_iter()
                .filter_map(|(id, (dirty, suspect))| {
                    let holder = state.caches.get(&id)?.holder.as_ref()?.upgrade()?;
                    Some((holder, dirty, suspect))
                })
                .collect()
        };
        for (holder, dirty, suspect) in holders {
            holder.take_off(&dirty, &suspect);
        }
    }

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

    /// Whether the graph is saved: when a cache of it is saved to a file, or the file exists
    /// (another process's caches).
    fn has_persistent(&self) -> bool {
        self.lock().caches.values().any(|c| c.persistent) || self.path.exists()
    }

    /// Writes the graph file, merged with what other processes wrote to it since, if this
    /// process changed anything. Entries that another process invalidated are taken off the
    /// hit path here.
    pub(crate) fn save(&self) -> Result<(), Error> {
        let (unchanged, empty) = {
            let state = self.lock();
            (
                state.changed.is_empty() && !state.fingerprints_changed,
                state.nodes.is_empty() && state.files.is_empty() && state.values.is_empty(),
            )
        };
        // A manager whose caches never read one another writes no graph file.
        if unchanged || (empty && !self.path.exists()) || !self.has_persistent() {
            return Ok(());
        }
        let _saving = self.save_lock.lock().unwrap_or_else(|e| e.into_inner());
        let take_off = super::persist::save(&self.path, &self.manager, &self.state)?;
        self.apply(take_off);
        Ok(())
    }
}

impl State {
    fn watch(&mut self, cache: u64) {
        if let Some(info) = self.caches.get(&cache) {
            info.watched.store(true, Ordering::Release);
        }
    }

    fn cache_name(&self, id: u64) -> String {
        self.caches
            .get(&id)
            .map(|c| c.name.clone())
            .or_else(|| self.recorded_fingerprints.get(&id).map(|c| c.0.clone()))
            .unwrap_or_else(|| format!("#{id:016x}"))
    }

    /// The stamp an input has now, if it has one.
    fn current(&self, input: &Input) -> Option<u64> {
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

    fn forget_reader(&mut self, reader: NodeId, inputs: &[Input]) {
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
    fn dirty(&mut self, id: NodeId, stamp: Option<u64>) {
        let node = self.nodes.entry(id).or_insert_with(|| Node {
            stamp: stamp.unwrap_or(MISSING_FILE),
            state: NodeState::Dirty,
            inputs: Box::new([]),
        });
        node.state = NodeState::Dirty;
        if let Some(stamp) = stamp {
            node.stamp = stamp;
        }
        self.changed.insert(id);
        self.watch(id.0);
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
    fn fingerprint_seen(&mut self, id: u64, name: &str, fp: u64, take_off: &mut TakeOff) {
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

    fn file_changed(&mut self, key: u64, now: FileState, take_off: &mut TakeOff) {
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
