//! The one rule by which what other processes saved meets this process's graph: records this
//! process changed since its last sync keep ours, the others take theirs, and entries another
//! process invalidated (made dirty or suspect) or recomputed to another stamp are taken off
//! this process's maps.

use super::Source;
use super::journal::Folded;
use super::state::{HashMap, NodeId, NodeState, State, TakeOff};

/// Merges `theirs` (a snapshot with its journal replayed, or the frames appended since this
/// process's offset, folded) into `state`; what must leave this process's maps is added to
/// `take_off`.
pub(super) fn merge(state: &mut State, theirs: Folded, take_off: &mut TakeOff) {
    for (id, recorded) in theirs.fingerprints {
        state.recorded_fingerprints.entry(id).or_insert(recorded);
    }
    for (key, file) in theirs.files {
        if !state.changed.contains(&(Source::FILES, key)) {
            state.files.insert(key, file);
        }
    }
    for (key, value) in theirs.values {
        if !state.changed.contains(&(Source::VALUES, key)) {
            state.values.insert(key, value);
        }
    }
    let mut invalidated: HashMap<NodeId, NodeState> = HashMap::default();
    for (id, node) in theirs.nodes {
        if state.changed.contains(&id) {
            continue;
        }
        let Some(node) = node else {
            // Another process forgot the entry (it left its cache there). Its node stays if
            // something here read it: it is the record of the stamp that was read.
            if !state.readers.contains_key(&id)
                && let Some(old) = state.nodes.remove(&id)
            {
                state.forget_reader(id, &old.inputs);
                state.dirtied_at.remove(&id);
            }
            continue;
        };
        let ours = state.nodes.get(&id);
        if ours == Some(&node) {
            continue;
        }
        // Another process recomputed or invalidated this entry since we last synced.
        if ours.is_some_and(|o| o.stamp != node.stamp) || node.state == NodeState::Dirty {
            invalidated.insert(id, NodeState::Dirty);
        } else if node.state == NodeState::Suspect {
            invalidated.insert(id, NodeState::Suspect);
        }
        for input in node.inputs.iter() {
            state.readers.entry(input.node()).or_default().insert(id);
        }
        if let Some(old) = state.nodes.insert(id, node) {
            // Its old inputs' reverse edges go, unless the new node read them too.
            let now: Vec<NodeId> = state.nodes[&id].inputs.iter().map(|i| i.node()).collect();
            let gone: Vec<_> = old
                .inputs
                .iter()
                .filter(|i| !now.contains(&i.node()))
                .copied()
                .collect();
            state.forget_reader(id, &gone);
        }
        state.watch(id.0);
    }
    for (id, how) in invalidated {
        match how {
            NodeState::Dirty => {
                // As an invalidation here: a computation of it running now is not recorded.
                state.note_dirtied(id);
                take_off.dirty(id);
            }
            _ => take_off.suspect(id),
        }
        state.spread(id, take_off);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::Input;
    use crate::deps::state::Node;

    fn node(stamp: u64, state: NodeState, reads: &[NodeId]) -> Node {
        Node {
            stamp,
            state,
            inputs: reads
                .iter()
                .map(|&(source, key)| Input {
                    source,
                    key,
                    seen: 1,
                })
                .collect(),
        }
    }

    /// `(2, k)` read `(3, 0)`, for k in 0..3.
    fn ours() -> State {
        let mut state = State::default();
        state.nodes.insert((3, 0), node(1, NodeState::Clean, &[]));
        for k in 0..3 {
            state
                .nodes
                .insert((2, k), node(10 + k, NodeState::Clean, &[(3, 0)]));
        }
        state.rebuild_readers();
        state
    }

    #[test]
    fn their_invalidation_is_taken_off_here_and_spreads_to_our_readers() {
        let mut state = ours();
        let mut theirs = Folded::default();
        theirs
            .nodes
            .insert((3, 0), Some(node(1, NodeState::Dirty, &[])));
        let mut take_off = TakeOff::default();
        merge(&mut state, theirs, &mut take_off);
        assert_eq!(state.nodes[&(3, 0)].state, NodeState::Dirty);
        let (dirty, suspect) = &take_off.by_cache[&3];
        assert!(dirty.contains(&0) && suspect.is_empty());
        assert_eq!(take_off.by_cache[&2].1.len(), 3, "every reader is suspect");
        assert!(state.dirtied_at.contains_key(&(3, 0)));
    }

    #[test]
    fn our_changes_win_and_removals_keep_what_we_read() {
        let mut state = ours();
        state.changed.insert((2, 1));
        let mut theirs = Folded::default();
        theirs
            .nodes
            .insert((2, 1), Some(node(99, NodeState::Clean, &[])));
        theirs.nodes.insert((2, 2), None);
        theirs.nodes.insert((3, 0), None);
        let mut take_off = TakeOff::default();
        merge(&mut state, theirs, &mut take_off);
        assert_eq!(
            state.nodes[&(2, 1)].stamp,
            11,
            "ours: changed here since the sync"
        );
        assert!(!state.nodes.contains_key(&(2, 2)), "their removal is taken");
        assert!(state.nodes.contains_key(&(3, 0)), "read here: kept");
        assert_eq!(
            state.readers[&(3, 0)].len(),
            2,
            "the removed reader's edge went"
        );
        assert!(take_off.is_empty());
    }

    #[test]
    fn a_recomputation_elsewhere_moves_reverse_edges() {
        let mut state = ours();
        let mut theirs = Folded::default();
        // (2, 0) recomputed elsewhere to another stamp, now reading (3, 5) instead.
        theirs
            .nodes
            .insert((2, 0), Some(node(77, NodeState::Clean, &[(3, 5)])));
        let mut take_off = TakeOff::default();
        merge(&mut state, theirs, &mut take_off);
        assert!(!state.readers[&(3, 0)].contains(&(2, 0)));
        assert!(state.readers[&(3, 5)].contains(&(2, 0)));
        assert!(
            take_off.by_cache[&2].0.contains(&0),
            "its old value leaves our map"
        );
    }
}
