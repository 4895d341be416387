//! The entry graph of one manager: a node per entry that read something or was read, its
//! stamp, its inputs, and the reverse edges that invalidation follows. The one place that
//! decides what a change reaches, and where early cutoff happens.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use super::declared::Declared;
use super::state::{HashSet, Node, NodeId, NodeState, State, TakeOff};
use super::sync::{Compaction, Synced, Unreadable};
use super::{Input, Source};
use crate::Error;

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
    /// Invalidates the whole cache: memory, file, and what read its entries.
    fn invalidate_whole(&self) -> Result<(), Error>;
    /// The cache's counters, for the manifest.
    fn stats(&self) -> crate::CacheStats;
}

/// The per-entry dependencies of one manager's caches.
pub(crate) struct EntryGraph {
    pub(super) manager: String,
    /// `<manager dir>/.graph.deps`, the snapshot.
    pub(super) path: PathBuf,
    /// `<manager dir>/.graph.journal`, the saves appended since the snapshot.
    pub(super) journal: PathBuf,
    state: Mutex<State>,
    /// Serializes saves of the graph file within this process.
    save_lock: Mutex<()>,
    /// Stamps handed to values of caches that cannot hash them (memory caches).
    fresh: AtomicU64,
    /// The declared edges between caches, and the declared names.
    pub(super) declared: RwLock<Declared>,
    /// The state's invalidation count, readable without its lock.
    generation: Arc<AtomicU64>,
    /// The graph's files as this process last read or wrote them: other stamps mean another
    /// process saved since, and the next save merges even if nothing changed here.
    synced: Mutex<Synced>,
    /// Rewrites the snapshot on a background thread once the journal outgrows it.
    pub(super) compaction: Compaction,
    /// What this process last wrote to the manifest.
    pub(super) manifest_written: super::manifest::ManifestWritten,
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
        let state = State::default();
        let generation = Arc::clone(&state.generation);
        let graph = Arc::new_cyclic(|me| EntryGraph {
            manager: manager.to_owned(),
            path: dir.join(super::GRAPH_FILE),
            journal: dir.join(super::journal::JOURNAL_FILE),
            state: Mutex::new(state),
            generation,
            save_lock: Mutex::new(()),
            // A random start, so that two processes' fresh stamps do not meet.
            fresh: AtomicU64::new(std::hash::BuildHasher::hash_one(&seed, manager) | 1),
            declared: RwLock::new(Declared::default()),
            synced: Mutex::new(Synced::default()),
            compaction: Compaction::new(Weak::clone(me)),
            manifest_written: Default::default(),
        });
        super::tracked::remember_graph(&graph);
        graph
    }

    pub(super) fn synced(&self) -> MutexGuard<'_, Synced> {
        // Replaced whole: a poisoned lock still holds a consistent one.
        self.synced.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        lock_state(&self.state)
    }

    /// The invalidation generation: a computation records it when it starts, and is not
    /// recorded (nor stored) if its entry is invalidated after it.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// A stamp never handed out before, for a value that cannot be hashed.
    pub(crate) fn fresh_stamp(&self) -> u64 {
        self.fresh.fetch_add(2, Ordering::Relaxed)
    }

    /// Reads the graph file once, then checks what it recorded against the present: changed
    /// function fingerprints and tracked files invalidate what they reach.
    pub(crate) fn ensure_loaded(&self) {
        if self.lock().loaded {
            return;
        }
        // Outside the state's lock: a writer of the manifest holds its file lock, then that.
        self.clean_manifest_temporaries();
        let mut take_off = TakeOff::default();
        let mut lost = false;
        {
            let mut state = self.lock();
            if state.loaded {
                return;
            }
            state.loaded = true;
            match super::sync::load(&self.manager, &self.path, &self.journal, &mut state) {
                Ok(synced) => *self.synced() = synced,
                // Nothing of it is loaded: not even the snapshot before a damaged journal.
                Err(Unreadable { path, reason }) => {
                    log::warn!(
                        "cacheman: {}",
                        Error::Corrupt {
                            cache: format!("(dependency graph of manager `{}`)", self.manager),
                            path,
                            reason: format!(
                                "{reason}; what each entry read is lost, so no cached entry \
                                 of the manager can be known to be current: every cache file \
                                 beside it is invalidated (entries are recomputed once) and \
                                 the graph starts anew"
                            ),
                        }
                    );
                    lost = true;
                }
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
        if lost {
            self.invalidate_unverifiable();
        }
    }

    /// After an unreadable graph file: invalidates every cache that has a file beside it
    /// (through its holder if it is linked, else by an empty file at a newer epoch), since any
    /// of their entries may have read inputs no longer recorded, then removes the unreadable
    /// file, so that the next process neither trusts those entries nor invalidates again.
    fn invalidate_unverifiable(&self) {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let extension = format!(".{}", crate::store::files::CACHE_EXTENSION);
        let names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                let name = name.strip_suffix(&extension)?.to_owned();
                crate::store::files::check_name("cache", &name).ok()?;
                Some(name)
            })
            .collect();
        for name in names {
            let holder = self
                .lock()
                .caches
                .get(&super::cache_id(&name))
                .and_then(|c| c.holder.as_ref()?.upgrade());
            let outcome = match holder {
                Some(holder) => holder.invalidate_whole(),
                None => {
                    let path = crate::store::files::cache_path(dir, &name);
                    crate::store::write_invalidation_marker(&name, &path, now_ms)
                }
            };
            if let Err(err) = outcome {
                log::warn!("cacheman: after an unreadable dependency graph: {err}");
            }
        }
        if let Err(err) = super::sync::remove_if_unreadable(&self.path, &self.journal) {
            log::warn!(
                "cacheman: the unreadable dependency graph {} of manager `{}` could not be \
                 removed ({err}); it is replaced at the next save",
                self.path.display(),
                self.manager
            );
        }
    }

    /// Records that cache `name` is computed by a function with fingerprint `fingerprint`
    /// (a `#[cached]` declaration, known before the cache is opened). A fingerprint other than
    /// the recorded one invalidates every entry of the cache, and what read them.
    pub(crate) fn declare(&self, name: &str, fingerprint: u64, persistent: bool) {
        self.declared_mut()
            .names
            .insert(name.to_owned(), persistent);
        let id = super::cache_id(name);
        let mut take_off = TakeOff::default();
        {
            let mut state = self.lock();
            state.cache_info(id, name).fn_fingerprint = Some(fingerprint);
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
            let info = state.cache_info(id, name);
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
            // Read from the map although its node is not clean: an invalidation is taking it
            // off right now (a value stored by hand makes its node clean). The node is left
            // as the invalidation made it, so the reading computation is found stale when it
            // completes (`computed` needs a clean node with the stamp it saw).
            Some(_) => stamp,
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
    /// entries that read it stay valid; another stamp makes them suspect (gathered in
    /// `take_off`, for the caller to [`apply`](Self::apply) once it holds no cache lock).
    pub(crate) fn computed(
        &self,
        id: NodeId,
        inputs: Vec<Input>,
        stamp: u64,
        since: u64,
        take_off: &mut TakeOff,
    ) -> bool {
        {
            let mut state = self.lock();
            let invalidated_since = state.dirtied_at.get(&id).is_some_and(|&at| at > since);
            if invalidated_since
                || !inputs
                    .iter()
                    .all(|input| state.current(input) == Some(input.seen))
            {
                return false;
            }
            state.dirtied_at.remove(&id);
            let old = state.nodes.remove(&id);
            if inputs.is_empty() && old.is_none() && !state.readers.contains_key(&id) {
                return true; // nothing read it, it read nothing: no node needed
            }
            if let Some(old) = &old {
                state.forget_reader(id, &old.inputs);
                if old.stamp != stamp {
                    state.spread(id, take_off);
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
        true
    }

    /// An entry was stored by hand (`insert`): a node it had takes the new stamp and loses
    /// its inputs; the entries that read another stamp become suspect.
    pub(crate) fn replaced(&self, id: NodeId, stamp: u64) {
        let mut take_off = TakeOff::default();
        {
            let mut state = self.lock();
            let Some(old) = state.nodes.remove(&id) else {
                return;
            };
            state.dirtied_at.remove(&id);
            state.forget_reader(id, &old.inputs);
            if old.stamp != stamp {
                state.spread(id, &mut take_off);
            }
            let node = Node {
                stamp,
                state: NodeState::Clean,
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
                state.dirtied_at.remove(&id);
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
    /// what it read. Entries found fresh on the way become clean too. What changed tracked
    /// files reach is left in `take_off`, for the caller to [`apply`](Self::apply).
    pub(crate) fn verify(&self, id: NodeId, take_off: &mut TakeOff) -> Verdict {
        let fresh = self.verify_node(id, take_off, 0);
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

    /// Whether the graph is saved: when a cache of it is saved to a file, or the file exists
    /// (another process's caches).
    fn has_persistent(&self) -> bool {
        self.lock().caches.values().any(|c| c.persistent) || self.path.exists()
    }

    /// Writes the whole graph as a new snapshot, which replaces its journal (what a background
    /// compaction does once the journal outgrows the snapshot).
    pub(crate) fn compact(&self) -> Result<(), Error> {
        if !self.has_persistent() {
            return Ok(());
        }
        let _saving = self.save_lock.lock().unwrap_or_else(|e| e.into_inner());
        let take_off = super::sync::save(self, true)?;
        self.apply(take_off);
        Ok(())
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
        // What another process saved since we last synced is merged even if nothing changed
        // here: its invalidations must reach this process's maps.
        let elsewhere = !self.synced().is_current(&self.path, &self.journal);
        // A manager whose caches never read one another writes no graph file.
        if (unchanged && !elsewhere) || (empty && !self.path.exists()) || !self.has_persistent() {
            return Ok(());
        }
        let _saving = self.save_lock.lock().unwrap_or_else(|e| e.into_inner());
        let take_off = super::sync::save(self, false)?;
        self.apply(take_off);
        Ok(())
    }
}
