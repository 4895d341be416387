//! Inputs that are not cache entries: tracked files and labelled values, kept in the graph of
//! each manager that saw them.

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use super::graph::EntryGraph;
use super::input::FileState;
use super::state::TakeOff;
use super::{Input, Source, stable_hash};

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

/// Adds `graph` to the graphs [`set_value_everywhere`] reaches.
pub(super) fn remember_graph(graph: &Arc<EntryGraph>) {
    GRAPHS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(graph));
}

impl EntryGraph {
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
    pub(super) fn refresh_file(&self, key: u64, take_off: &mut TakeOff) {
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
}
