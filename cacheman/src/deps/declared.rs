//! The declared dependency graph of one manager: edges between cache *names* (from
//! `depends_on` and `register_dependent_cache`), so either end may be declared before its cache
//! exists, and the names `#[cached]` declares. Whole-cache invalidation follows these edges.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// What a manager knows of its caches before they are registered.
#[derive(Debug, Default)]
pub(crate) struct Declared {
    pub(crate) edges: DependencyGraph,
    /// Names declared by `#[cached]` functions, and whether each cache has a file.
    pub(crate) names: HashMap<String, bool>,
}

/// `cache → caches that depend on it`. Kept acyclic: an edge that would close a cycle is refused.
#[derive(Debug, Default, Clone)]
pub(crate) struct DependencyGraph {
    dependents: BTreeMap<String, BTreeSet<String>>,
}

impl DependencyGraph {
    /// Adds `cache → dependent`. On a cycle, returns it as a path from `cache` back to `cache`.
    pub(crate) fn add_edge(&mut self, cache: &str, dependent: &str) -> Result<(), Vec<String>> {
        if cache == dependent {
            return Err(vec![cache.to_owned(), cache.to_owned()]);
        }
        // The new edge closes a cycle iff `cache` is already reachable from `dependent`.
        if let Some(mut path) = self.path(dependent, cache) {
            path.insert(0, cache.to_owned());
            return Err(path);
        }
        self.dependents
            .entry(cache.to_owned())
            .or_default()
            .insert(dependent.to_owned());
        Ok(())
    }

    /// Whether `name` appears in any edge.
    pub(crate) fn mentions(&self, name: &str) -> bool {
        self.dependents.contains_key(name) || self.dependents.values().any(|d| d.contains(name))
    }

    /// Every cache that depends on `cache`, directly or not, each once, nearest first.
    pub(crate) fn dependents_of(&self, cache: &str) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut order = Vec::new();
        let mut queue = VecDeque::from([cache.to_owned()]);
        seen.insert(cache.to_owned());
        while let Some(name) = queue.pop_front() {
            for next in self.dependents.get(&name).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    order.push(next.clone());
                    queue.push_back(next.clone());
                }
            }
        }
        order
    }

    /// A path of edges from `from` to `to`, both included, if there is one.
    fn path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = HashSet::from([from]);
        while let Some(name) = queue.pop_front() {
            if name == to {
                let mut path = vec![to.to_owned()];
                let mut at = to;
                while let Some(&p) = parent.get(at) {
                    path.push(p.to_owned());
                    at = p;
                }
                path.reverse();
                return Some(path);
            }
            for next in self.dependents.get(name).into_iter().flatten() {
                if seen.insert(next.as_str()) {
                    parent.insert(next.as_str(), name);
                    queue.push_back(next.as_str());
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_edges_are_cycles() {
        let mut g = DependencyGraph::default();
        assert_eq!(g.add_edge("a", "a"), Err(vec!["a".into(), "a".into()]));
    }

    #[test]
    fn a_cycle_reports_its_path() {
        let mut g = DependencyGraph::default();
        g.add_edge("a", "b").unwrap();
        g.add_edge("b", "c").unwrap();
        let cycle = g.add_edge("c", "a").unwrap_err();
        assert_eq!(cycle, vec!["c", "a", "b", "c"]);
        // The refused edge left nothing behind.
        assert_eq!(g.dependents_of("c"), Vec::<String>::new());
    }

    #[test]
    fn diamonds_list_each_dependent_once() {
        let mut g = DependencyGraph::default();
        for (a, b) in [("root", "l"), ("root", "r"), ("l", "tip"), ("r", "tip")] {
            g.add_edge(a, b).unwrap();
        }
        let mut all = g.dependents_of("root");
        all.sort();
        assert_eq!(all, vec!["l", "r", "tip"]);
    }

    #[test]
    fn long_chains_are_followed_to_the_end() {
        let mut g = DependencyGraph::default();
        for i in 0..1_000 {
            g.add_edge(&i.to_string(), &(i + 1).to_string()).unwrap();
        }
        assert_eq!(g.dependents_of("0").len(), 1_000);
        assert!(g.add_edge("1000", "0").is_err());
    }
}
