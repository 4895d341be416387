//! `cacheman graph`: the dependencies between caches, declared and recorded, as a tree, as
//! Graphviz or as JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::PathBuf;

use serde_json::{Value, json};

use super::Outcome;
use super::commands::{Context, Done, scan};
use super::output::print_json;
use crate::inspect::{GraphSummary, Manager};

/// One manager's edges: declared (from its manifest) and recorded (from its graph).
struct Edges {
    declared: BTreeSet<(String, String)>,
    recorded: BTreeMap<(String, String), u64>,
    caches: BTreeSet<String>,
}

fn edges_of(manager: &Manager) -> Edges {
    let mut edges = Edges {
        declared: BTreeSet::new(),
        recorded: BTreeMap::new(),
        caches: manager.caches.iter().map(|c| c.name.clone()).collect(),
    };
    if let Some(manifest) = &manager.manifest {
        for (cache, recorded) in &manifest.caches {
            edges.caches.insert(cache.clone());
            for dependent in &recorded.dependents {
                edges.caches.insert(dependent.clone());
                edges.declared.insert((cache.clone(), dependent.clone()));
            }
        }
    }
    if let Some(graph) = &manager.graph {
        for edge in &graph.edges {
            edges.caches.insert(edge.from.clone());
            edges.caches.insert(edge.to.clone());
            edges
                .recorded
                .insert((edge.from.clone(), edge.to.clone()), edge.reads);
        }
    }
    edges
}

/// `cacheman graph [MANAGER]`.
pub(crate) fn graph(context: &Context, only: Option<&str>, dot: bool, out: &mut dyn Write) -> Done {
    let mut managers = try_outcome!(scan(context));
    if let Some(only) = only {
        managers.retain(|m| m.name == only);
        if managers.is_empty() {
            return Ok(Outcome::Usage(format!(
                "no manager `{only}` under {} (`cacheman ls` lists them)",
                context.base.display()
            )));
        }
    }
    if context.json {
        let documents: Vec<Value> = managers
            .iter()
            .map(|manager| {
                let edges = edges_of(manager);
                let graph = manager.graph.as_ref();
                json!({
                    "manager": manager.name,
                    "caches": edges.caches,
                    "declared": edges.declared.iter().map(|(from, to)| json!({"from": from, "to": to})).collect::<Vec<_>>(),
                    "recorded": edges.recorded.iter().map(|((from, to), reads)| json!({"from": from, "to": to, "reads": reads})).collect::<Vec<_>>(),
                    "recorded_entries": graph.map_or(0, |g| g.entries),
                    "stale_entries": graph.map_or(0, |g| g.stale_entries),
                    "tracked_files": graph.map(|g| g.tracked_files.clone()).unwrap_or_default(),
                    "files": graph.map(files_json),
                })
            })
            .collect();
        print_json(out, &json!({ "managers": documents }))?;
        return Ok(Outcome::Ok);
    }
    if dot {
        writeln!(out, "digraph cacheman {{")?;
        writeln!(out, "  rankdir=LR;")?;
        for manager in &managers {
            let edges = edges_of(manager);
            let id = |cache: &str| format!("\"{}/{}\"", manager.name, cache);
            writeln!(out, "  subgraph \"cluster_{}\" {{", manager.name)?;
            writeln!(out, "    label=\"{}\";", manager.name)?;
            for cache in &edges.caches {
                writeln!(out, "    {} [label=\"{cache}\"];", id(cache))?;
            }
            for (from, to) in &edges.declared {
                writeln!(out, "    {} -> {};", id(from), id(to))?;
            }
            for ((from, to), reads) in &edges.recorded {
                writeln!(
                    out,
                    "    {} -> {} [style=dashed, label=\"{reads} reads\"];",
                    id(from),
                    id(to)
                )?;
            }
            writeln!(out, "  }}")?;
        }
        writeln!(out, "}}")?;
        return Ok(Outcome::Ok);
    }
    if managers.is_empty() {
        writeln!(out, "no caches under {}", context.base.display())?;
    }
    for manager in &managers {
        writeln!(out, "{}", manager.name)?;
        let edges = edges_of(manager);
        let mut children: BTreeMap<&str, Vec<(&str, String)>> = BTreeMap::new();
        let mut has_parent = BTreeSet::new();
        for (from, to) in &edges.declared {
            let note = match edges.recorded.get(&(from.clone(), to.clone())) {
                Some(reads) => format!("declared; {reads} reads recorded"),
                None => "declared".to_owned(),
            };
            children.entry(from).or_default().push((to, note));
            has_parent.insert(to.as_str());
        }
        for ((from, to), reads) in &edges.recorded {
            if from == to || edges.declared.contains(&(from.clone(), to.clone())) {
                continue;
            }
            children
                .entry(from)
                .or_default()
                .push((to, format!("{reads} reads recorded")));
            has_parent.insert(to.as_str());
        }
        for list in children.values_mut() {
            list.sort();
        }
        for cache in &edges.caches {
            if !has_parent.contains(cache.as_str()) {
                let mut path = vec![cache.clone()];
                tree(out, &children, &edges, cache, "  ", None, &mut path)?;
            }
        }
        if let Some(graph) = &manager.graph {
            writeln!(
                out,
                "  ({} entries recorded, {} waiting to be recomputed or checked, {} tracked file(s){})",
                graph.entries,
                graph.stale_entries,
                graph.tracked_files.len(),
                journal_note(graph)
            )?;
        }
    }
    Ok(Outcome::Ok)
}

/// Prints `cache` and, below it, what depends on it.
fn tree(
    out: &mut dyn Write,
    children: &BTreeMap<&str, Vec<(&str, String)>>,
    edges: &Edges,
    cache: &str,
    indent: &str,
    note: Option<&str>,
    path: &mut Vec<String>,
) -> io::Result<()> {
    let recursive = edges
        .recorded
        .get(&(cache.to_owned(), cache.to_owned()))
        .map(|reads| format!(" (reads itself: {reads} reads recorded)"))
        .unwrap_or_default();
    match note {
        Some(note) => writeln!(out, "{cache} ({note}){recursive}")?,
        None => writeln!(out, "{indent}{cache}{recursive}")?,
    }
    let Some(list) = children.get(cache) else {
        return Ok(());
    };
    for (i, (child, note)) in list.iter().enumerate() {
        let last = i + 1 == list.len();
        let branch = if last { "└─ " } else { "├─ " };
        let deeper = format!("{indent}{}", if last { "   " } else { "│  " });
        write!(out, "{indent}{branch}")?;
        if path.iter().any(|p| p == child) {
            writeln!(out, "{child} ({note}; already above)")?;
            continue;
        }
        path.push((*child).to_owned());
        tree(out, children, edges, child, &deeper, Some(note), path)?;
        path.pop();
    }
    Ok(())
}

/// `; N saves in its journal` (and a torn last frame) when saves were appended to the graph's
/// journal since its snapshot.
fn journal_note(graph: &GraphSummary) -> String {
    let mut note = match graph.journal_frames {
        0 => String::new(),
        1 => "; 1 save in its journal".to_owned(),
        n => format!("; {n} saves in its journal"),
    };
    if let Some(torn) = &graph.journal_torn {
        note.push_str(&format!(
            "; its journal's torn last frame ({torn}) is dropped at the next load"
        ));
    }
    note
}

/// The graph's files, for JSON: the snapshot's and the journal's sizes, the journal's saves.
pub(super) fn files_json(graph: &GraphSummary) -> Value {
    json!({
        "snapshot_bytes": graph.snapshot_bytes,
        "journal_bytes": graph.journal_bytes,
        "journal_frames": graph.journal_frames,
        "journal_torn": graph.journal_torn,
    })
}

/// `verify`'s row for a manager's graph that loads (one that does not is among the manager's
/// problems): its path and what it holds.
pub(super) fn verified(manager: &Manager) -> Option<(String, PathBuf, String)> {
    let graph = manager.graph.as_ref()?;
    let detail = format!("{} entries recorded{}", graph.entries, journal_note(graph))
        .replace("; its journal's torn", "; a torn");
    Some((
        format!("{}/{}", manager.name, crate::deps::GRAPH_FILE),
        manager.directory.join(crate::deps::GRAPH_FILE),
        detail,
    ))
}
