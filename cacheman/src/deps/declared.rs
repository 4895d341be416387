//! The declared dependency graph of one manager: edges between cache *names* (from
//! `depends_on` and `register_dependent_cache`), so either end may be declared before its cache
//! exists, and the names `#[cached]` declares. Whole-cache invalidation follows these edges.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{RwLockReadGuard, RwLockWriteGuard};

use super::graph::{EntryGraph, Holder};
use crate::Error;

/// What a manager knows of its caches before they are registered.
#[derive(Debug, Default)]
pub(crate) struct Declared {
    pub(crate) edges: DependencyGraph,
    /// Names declared by `#[cached]` functions, and whether each cache has a file.
    pub(crate) names: HashMap<String, bool>,
}

/// The whole-cache side of a manager's dependencies: declared edges and names, and
/// invalidating caches whole along them.
impl EntryGraph {
    fn declared(&self) -> RwLockReadGuard<'_, Declared> {
        // Each change is one insert: a poisoned lock still guards a whole graph.
        self.declared.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn declared_mut(&self) -> RwLockWriteGuard<'_, Declared> {
        self.declared.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Declares that `dependent` is derived from `cache` as a whole; on a cycle, returns it.
    pub(crate) fn add_edge(&self, cache: &str, dependent: &str) -> Result<(), Vec<String>> {
        self.declared_mut().edges.add_edge(cache, dependent)
    }

    /// Every cache declared to depend on `name`, directly or not, nearest first.
    pub(crate) fn dependents_of(&self, name: &str) -> Vec<String> {
        self.declared().edges.dependents_of(name)
    }

    /// Whether `name` is a cache of this manager: registered, declared, or in an edge.
    pub(crate) fn is_known(&self, name: &str) -> bool {
        let id = super::cache_id(name);
        let linked = self
            .lock()
            .caches
            .get(&id)
            .is_some_and(|c| c.holder.is_some());
        let declared = self.declared();
        linked || declared.names.contains_key(name) || declared.edges.mentions(name)
    }

    /// Makes `name` known as a cache of this manager (with a file, or not) without a function
    /// fingerprint: what a tool learns from a manifest.
    pub(crate) fn declare_recorded(&self, name: &str, persistent: bool) {
        self.declared_mut()
            .names
            .insert(name.to_owned(), persistent);
    }

    /// The caches this process knows (linked ones, and declared names), each with whether it
    /// has a file: what the manifest records.
    pub(super) fn known_caches(&self) -> Vec<(String, bool)> {
        let mut known: BTreeMap<String, bool> = self
            .lock()
            .caches
            .values()
            .filter(|c| c.holder.is_some())
            .map(|c| (c.name.clone(), c.persistent))
            .collect();
        for (name, has_file) in &self.declared().names {
            known.entry(name.clone()).or_insert(*has_file);
        }
        known.into_iter().collect()
    }

    /// Each cache's direct declared dependents.
    pub(super) fn declared_edges(&self) -> Vec<(String, Vec<String>)> {
        self.declared()
            .edges
            .dependents
            .iter()
            .map(|(cache, dependents)| (cache.clone(), dependents.iter().cloned().collect()))
            .collect()
    }

    /// The counters of every cache linked now.
    pub(super) fn linked_stats(&self) -> Vec<(String, crate::CacheStats)> {
        let holders: Vec<(String, std::sync::Arc<dyn Holder>)> = self
            .lock()
            .caches
            .values()
            .filter_map(|c| Some((c.name.clone(), c.holder.as_ref()?.upgrade()?)))
            .collect();
        holders
            .into_iter()
            .map(|(name, holder)| (name, holder.stats()))
            .collect()
    }

    /// Whether `holder` is the cache linked under `name` (not an older one of that name).
    pub(crate) fn links(&self, name: &str, holder: &dyn Holder) -> bool {
        let id = super::cache_id(name);
        self.lock()
            .caches
            .get(&id)
            .and_then(|c| c.holder.as_ref())
            .is_some_and(|h| std::ptr::addr_eq(h.as_ptr(), holder))
    }

    /// Invalidates cache `name` whole and, with `dependents`, every cache declared to depend
    /// on it: a registered one through its holder (memory and file), another by an empty file
    /// at a newer epoch (unless it is declared without a file). Each invalidated cache's
    /// recorded readers follow. Every target is tried; the first error is returned.
    pub(crate) fn invalidate_caches(
        &self,
        name: &str,
        dependents: bool,
        now_ms: u64,
    ) -> Result<(), Error> {
        if !self.is_known(name) {
            return Err(Error::CacheNotFound {
                manager: self.manager.clone(),
                cache: name.to_owned(),
            });
        }
        let mut targets = vec![name.to_owned()];
        if dependents {
            targets.extend(self.dependents_of(name));
        }
        let mut first_error = None;
        for target in targets {
            let id = super::cache_id(&target);
            let holder = self
                .lock()
                .caches
                .get(&id)
                .and_then(|c| c.holder.as_ref()?.upgrade());
            let outcome = match holder {
                Some(holder) => holder.invalidate_whole(),
                None => self.invalidate_unregistered(&target, now_ms),
            };
            if let Err(err) = outcome {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Invalidates the file of a cache that is not registered in this process, and what read
    /// its entries.
    fn invalidate_unregistered(&self, name: &str, now_ms: u64) -> Result<(), Error> {
        crate::store::files::check_name("cache", name)?;
        self.ensure_loaded();
        self.invalidate_cache(super::cache_id(name));
        // The graph before the marker: a crash between the two leaves the cache's entries
        // dirty in the graph (dropped at load), never readers that missed the invalidation.
        self.save()?;
        if self.declared().names.get(name) == Some(&false) {
            return Ok(()); // a `persistent = false` cache has no file to invalidate
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let path = crate::store::files::cache_path(dir, name);
        crate::store::write_invalidation_marker(name, &path, now_ms)
    }
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
