//! The commands, each printing a table or one JSON document.

use std::collections::BTreeSet;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::Outcome;
use super::output::{self, Style, print_json};
use crate::inspect::{self, CacheFile, Manager, Verification};

pub(crate) struct Context {
    pub base: PathBuf,
    pub json: bool,
    pub style: Style,
}

pub(super) type Done = io::Result<Outcome>;

pub(super) fn scan(context: &Context) -> Result<Vec<Manager>, Outcome> {
    inspect::scan(&context.base).map_err(|err| {
        eprintln!(
            "error: could not read the base directory {}: {err}",
            context.base.display()
        );
        Outcome::Problems
    })
}

/// The caches `spec` names (`CACHE` or `MANAGER/CACHE`), or every cache without one, with
/// their managers.
fn select(context: &Context, spec: Option<&str>) -> Result<Vec<(Manager, CacheFile)>, Outcome> {
    let managers = match spec.and_then(|s| s.split_once('/')) {
        Some((manager, _)) => {
            let dir = context.base.join(manager);
            if !dir.is_dir() {
                return Err(Outcome::Usage(format!(
                    "no manager `{manager}` under {} (`cacheman ls` lists them)",
                    context.base.display()
                )));
            }
            vec![inspect::read_manager(&dir)]
        }
        None => scan(context)?,
    };
    let wanted = spec.map(|s| s.split_once('/').map_or(s, |(_, cache)| cache));
    let mut found = Vec::new();
    for manager in managers {
        for cache in &manager.caches {
            if wanted.is_none_or(|w| w == cache.name) {
                found.push((manager.clone(), cache.clone()));
            }
        }
    }
    match (spec, found.len()) {
        (Some(spec), 0) => Err(Outcome::Usage(format!(
            "no cache `{spec}` under {} (`cacheman ls` lists them)",
            context.base.display()
        ))),
        (Some(spec), n) if n > 1 && !spec.contains('/') => Err(Outcome::Usage(format!(
            "`{spec}` names a cache of several managers ({}): write MANAGER/CACHE",
            found
                .iter()
                .map(|(m, c)| format!("{}/{}", m.name, c.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        _ => Ok(found),
    }
}

fn qualified(manager: &Manager, cache: &CacheFile) -> String {
    format!("{}/{}", manager.name, cache.name)
}

/// `cacheman ls`.
pub(crate) fn ls(context: &Context, out: &mut dyn Write) -> Done {
    let managers = try_outcome!(scan(context));
    let problems = managers.iter().any(|m| !m.problems.is_empty())
        || managers
            .iter()
            .flat_map(|m| &m.caches)
            .any(|c| c.problem.is_some() || !c.stale_temporaries.is_empty());
    if context.json {
        let managers: Vec<Value> = managers.iter().map(manager_json).collect();
        print_json(out, &json!({ "base": context.base, "managers": managers }))?;
    } else if managers.is_empty() {
        writeln!(out, "no caches under {}", context.base.display())?;
    } else {
        let now = SystemTime::now();
        let mut rows = Vec::new();
        for manager in &managers {
            for cache in &manager.caches {
                let header = cache.header.as_ref();
                let state = match (&cache.problem, cache.exists, cache.save_in_progress) {
                    (Some(problem), _, _) => context.style.bad(&format!("damaged: {problem}")),
                    (None, false, _) => "no file".to_owned(),
                    (None, true, true) => "saving".to_owned(),
                    (None, true, false) if header.is_some_and(|h| h.is_invalidation_marker()) => {
                        "invalidated".to_owned()
                    }
                    (None, true, false) => context.style.good("ok"),
                };
                let state = if cache.stale_temporaries.is_empty() {
                    state
                } else {
                    format!(
                        "{state}; {}",
                        context.style.bad(&format!(
                            "{} stale temporary file(s)",
                            cache.stale_temporaries.len()
                        ))
                    )
                };
                rows.push(vec![
                    qualified(manager, cache),
                    // `+`: saves appended to the journal since the snapshot counted them.
                    header.map_or("-".into(), |h| match cache.journal_has_frames() {
                        true => format!("{}+", h.entries),
                        false => h.entries.to_string(),
                    }),
                    output::size(cache.size_bytes + cache.journal_bytes),
                    header.map_or("-".into(), |h| h.codec.to_owned()),
                    output::ago(cache.modified, now),
                    header.map_or("-".into(), |h| h.format_version.to_string()),
                    state,
                ]);
            }
        }
        output::table(
            out,
            &[
                "CACHE", "ENTRIES", "SIZE", "CODEC", "SAVED", "FORMAT", "STATE",
            ],
            &rows,
            &[1, 2, 5],
        )?;
        for manager in &managers {
            for problem in &manager.problems {
                writeln!(out, "{}", context.style.bad(&format!("problem: {problem}")))?;
            }
        }
    }
    Ok(if problems {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

fn manager_json(manager: &Manager) -> Value {
    let caches: Vec<Value> = manager.caches.iter().map(cache_json).collect();
    json!({
        "name": manager.name,
        "directory": manager.directory,
        "caches": caches,
        "graph": manager.graph.as_ref().map(super::graph::files_json),
        "problems": manager.problems,
    })
}

fn cache_json(cache: &CacheFile) -> Value {
    let header = cache.header.as_ref();
    json!({
        "name": cache.name,
        "path": cache.path,
        "exists": cache.exists,
        "size_bytes": cache.size_bytes,
        "journal_bytes": cache.journal_bytes,
        "modified_unix_ms": output::unix_ms(cache.modified),
        "entries": header.map(|h| h.entries),
        "codec": header.map(|h| h.codec),
        "format_version": header.map(|h| h.format_version),
        "epoch": header.map(|h| h.epoch),
        "invalidated": header.is_some_and(|h| h.is_invalidation_marker()),
        "save_in_progress": cache.save_in_progress,
        "stale_temporaries": cache.stale_temporaries,
        "problem": cache.problem,
    })
}

/// `cacheman stats [CACHE]`.
pub(crate) fn stats(context: &Context, spec: Option<&str>, out: &mut dyn Write) -> Done {
    let selected = try_outcome!(select(context, spec));
    let now = SystemTime::now();
    let mut rows = Vec::new();
    let mut documents = Vec::new();
    for (manager, cache) in &selected {
        let recorded = manager
            .manifest
            .as_ref()
            .and_then(|m| m.caches.get(&cache.name))
            .map(|c| (c.stats, c.stats_updated_ms));
        let name = qualified(manager, cache);
        let stats = recorded.map(|(s, updated_ms)| {
            json!({
                "hits": s.hits,
                "misses": s.misses,
                "hit_ratio": s.hit_ratio(),
                "inserts": s.inserts,
                "evictions": s.evictions,
                "saves": s.saves,
                "loads": s.loads,
                "entries": s.entries,
                "updated_unix_ms": updated_ms,
            })
        });
        documents.push(json!({ "cache": name, "recorded": recorded.is_some(), "stats": stats }));
        let Some((s, updated_ms)) = recorded else {
            rows.push(vec![
                name,
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "not recorded".into(),
            ]);
            continue;
        };
        let updated = SystemTime::UNIX_EPOCH + Duration::from_millis(updated_ms);
        rows.push(vec![
            name,
            s.hits.to_string(),
            s.misses.to_string(),
            format!("{:.1}%", s.hit_ratio() * 100.0),
            s.evictions.to_string(),
            s.saves.to_string(),
            s.loads.to_string(),
            output::ago(Some(updated), now),
        ]);
    }
    if context.json {
        print_json(out, &json!({ "caches": documents }))?;
    } else if rows.is_empty() {
        writeln!(out, "no caches under {}", context.base.display())?;
    } else {
        output::table(
            out,
            &[
                "CACHE",
                "HITS",
                "MISSES",
                "HIT RATE",
                "EVICTIONS",
                "SAVES",
                "LOADS",
                "UPDATED",
            ],
            &rows,
            &[1, 2, 3, 4, 5, 6],
        )?;
    }
    Ok(Outcome::Ok)
}

/// `cacheman verify [CACHE]`.
pub(crate) fn verify(context: &Context, spec: Option<&str>, out: &mut dyn Write) -> Done {
    let selected = try_outcome!(select(context, spec));
    let mut problems = false;
    let mut rows = Vec::new();
    let mut documents = Vec::new();
    let bar_wanted = !context.json && io::stderr().is_terminal();
    for (manager, cache) in &selected {
        let bar = (bar_wanted && cache.size_bytes >= 64 << 20).then(|| {
            let bar = indicatif::ProgressBar::new(cache.size_bytes);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg} {bar:40} {bytes}/{total_bytes}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(qualified(manager, cache));
            bar
        });
        let found = inspect::verify(&cache.path, &mut |done, _| {
            if let Some(bar) = &bar {
                bar.set_position(done);
            }
        });
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let (result, detail) = match &found {
            Verification::Intact {
                entries,
                journal_frames,
                note,
                ..
            } => {
                let mut detail = format!("{entries} entries");
                match journal_frames {
                    0 => {}
                    1 => detail.push_str(", 1 save in the journal"),
                    n => detail.push_str(&format!(", {n} saves in the journal")),
                }
                if let Some(note) = note {
                    detail.push_str(&format!("; {note}"));
                }
                ("ok", detail)
            }
            Verification::Missing => ("no file", String::new()),
            Verification::Damaged(reason) => ("damaged", reason.clone()),
            Verification::Unreadable(reason) => ("unreadable", reason.clone()),
        };
        problems |= !found.is_ok();
        documents.push(json!({
            "cache": qualified(manager, cache),
            "path": cache.path,
            "result": result,
            "detail": detail,
        }));
        let shown = if found.is_ok() {
            context.style.good(result)
        } else {
            context.style.bad(result)
        };
        rows.push(vec![qualified(manager, cache), shown, detail]);
    }
    // The manifests and graph files of the managers looked at.
    let mut seen = BTreeSet::new();
    let mut other = Vec::new();
    for (manager, _) in &selected {
        if seen.insert(manager.name.clone()) {
            other.extend(manager.problems.iter().cloned());
            // The graph (snapshot and journal) when every cache is verified.
            if let Some((name, path, detail)) = spec
                .is_none()
                .then(|| super::graph::verified(manager))
                .flatten()
            {
                documents
                    .push(json!({ "cache": name, "path": path, "result": "ok", "detail": detail }));
                rows.push(vec![name, context.style.good("ok"), detail]);
            }
        }
    }
    problems |= !other.is_empty();
    if context.json {
        print_json(out, &json!({ "files": documents, "problems": other }))?;
    } else {
        if rows.is_empty() {
            writeln!(out, "no caches under {}", context.base.display())?;
        } else {
            output::table(out, &["CACHE", "RESULT", "DETAIL"], &rows, &[])?;
        }
        for problem in &other {
            writeln!(out, "{}", context.style.bad(&format!("problem: {problem}")))?;
        }
        if problems {
            writeln!(
                out,
                "damaged files are not loaded by programs; their next save replaces them \
                 (`cacheman clear` empties one now)"
            )?;
        }
    }
    Ok(if problems {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

/// The one cache `spec` names.
fn one(context: &Context, spec: &str) -> Result<(Manager, CacheFile), Outcome> {
    let mut found = select(context, Some(spec))?;
    Ok(found.remove(0))
}

/// `cacheman clear CACHE`.
pub(crate) fn clear(context: &Context, spec: &str, out: &mut dyn Write) -> Done {
    let (manager, cache) = try_outcome!(one(context, spec));
    let name = qualified(&manager, &cache);
    if let Err(err) = inspect::clear(&manager.directory, &cache.name) {
        eprintln!("error: {err}");
        return Ok(Outcome::Problems);
    }
    if context.json {
        print_json(out, &json!({ "cleared": [name] }))?;
    } else {
        writeln!(out, "cleared {name}")?;
    }
    Ok(Outcome::Ok)
}

/// `cacheman invalidate CACHE [--no-dependents]`.
pub(crate) fn invalidate(
    context: &Context,
    spec: &str,
    dependents: bool,
    out: &mut dyn Write,
) -> Done {
    let (manager, cache) = try_outcome!(one(context, spec));
    let gone = match inspect::invalidate(&manager.directory, &cache.name, dependents) {
        Ok(gone) => gone,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(Outcome::Problems);
        }
    };
    let gone: Vec<String> = gone
        .iter()
        .map(|c| format!("{}/{c}", manager.name))
        .collect();
    if context.json {
        print_json(out, &json!({ "invalidated": gone }))?;
    } else {
        for name in &gone {
            writeln!(out, "invalidated {name}")?;
        }
        writeln!(
            out,
            "entries of other caches recorded as reading them are recomputed when next asked for"
        )?;
    }
    Ok(Outcome::Ok)
}

/// `cacheman evict --older-than AGE | --larger-than SIZE [--dry-run]`.
pub(crate) fn evict(
    context: &Context,
    older_than: Option<Duration>,
    larger_than: Option<u64>,
    dry_run: bool,
    out: &mut dyn Write,
) -> Done {
    if older_than.is_none() && larger_than.is_none() {
        return Ok(Outcome::Usage(
            "say what to evict: --older-than AGE and/or --larger-than SIZE".into(),
        ));
    }
    let now = SystemTime::now();
    let selected = try_outcome!(select(context, None));
    let chosen: Vec<&(Manager, CacheFile)> = selected
        .iter()
        .filter(|(_, cache)| {
            cache.exists && cache.header.is_some_and(|h| !h.is_invalidation_marker())
        })
        .filter(|(_, cache)| {
            let old = older_than.is_some_and(|age| {
                cache
                    .modified
                    .and_then(|m| now.duration_since(m).ok())
                    .is_some_and(|a| a > age)
            });
            let large = larger_than.is_some_and(|limit| cache.size_bytes > limit);
            old || large
        })
        .collect();
    let mut problems = false;
    let mut evicted = Vec::new();
    for (manager, cache) in &chosen {
        if !dry_run && let Err(err) = inspect::clear(&manager.directory, &cache.name) {
            eprintln!("error: {err}");
            problems = true;
            continue;
        }
        evicted.push((qualified(manager, cache), cache.size_bytes, cache.modified));
    }
    let freed: u64 = evicted.iter().map(|(_, size, _)| *size).sum();
    if context.json {
        let list: Vec<Value> = evicted
            .iter()
            .map(|(name, size, modified)| {
                json!({ "cache": name, "size_bytes": size, "modified_unix_ms": output::unix_ms(*modified) })
            })
            .collect();
        print_json(
            out,
            &json!({ "dry_run": dry_run, "evicted": list, "bytes": freed }),
        )?;
    } else if evicted.is_empty() {
        writeln!(out, "nothing to evict")?;
    } else {
        let verb = if dry_run { "would clear" } else { "cleared" };
        for (name, size, modified) in &evicted {
            writeln!(
                out,
                "{verb} {name} ({}, saved {})",
                output::size(*size),
                output::ago(*modified, now)
            )?;
        }
        writeln!(
            out,
            "{} in {} cache(s){}",
            output::size(freed),
            evicted.len(),
            if dry_run {
                " (dry run: nothing changed)"
            } else {
                ""
            }
        )?;
    }
    Ok(if problems {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}
