//! The commands that need a cache's key and value types: `show`, `export`, `why`. They work
//! when a program embeds the command (its `#[cached]` declarations, and the caches it hands
//! over, know their types); the standalone binary says so and exits 2.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::Outcome;
use super::output::print_json;
use crate::Error;
use crate::declarations::Declaration;
use crate::inspect::TypedView;

/// Where typed views come from: caches the program handed over, then its `#[cached]`
/// declarations (opened only when asked for).
pub(crate) struct Views<'a> {
    pub given: &'a [&'a dyn TypedView],
}

/// A view found for a command: borrowed from the program, or opened from a declaration.
enum Found<'a> {
    Given(&'a dyn TypedView),
    Opened(Box<dyn TypedView>),
}

impl Found<'_> {
    fn view(&self) -> &dyn TypedView {
        match self {
            Found::Given(view) => *view,
            Found::Opened(view) => view.as_ref(),
        }
    }
}

impl<'a> Views<'a> {
    fn find(&self, spec: &str, command: &str) -> Result<Found<'a>, Outcome> {
        let (manager, cache) = match spec.split_once('/') {
            Some((manager, cache)) => (Some(manager), cache),
            None => (None, spec),
        };
        if manager.is_none()
            && let Some(view) = self.given.iter().find(|v| v.name() == cache)
        {
            return Ok(Found::Given(*view));
        }
        let declared: Vec<&Declaration> = inventory::iter::<Declaration>
            .into_iter()
            .filter(|d| d.cache == cache && manager.is_none_or(|m| m == d.manager))
            .collect();
        match declared.as_slice() {
            [] if self.given.is_empty()
                && inventory::iter::<Declaration>.into_iter().next().is_none() =>
            {
                Err(Outcome::Usage(format!(
                    "`{command}` needs the cache's key and value types, which only the program \
                     that owns it has: run the command from that program \
                     (`cacheman::cli::run()` in its main; see examples/inspect.rs)"
                )))
            }
            [] => Err(Outcome::Usage(format!(
                "this program has no persistent cache `{spec}` with known types (its \
                 `#[cached]` functions and the caches it passes to `cacheman::cli` are)"
            ))),
            [decl] => match decl.view {
                Some(open) => open(decl).map(Found::Opened).map_err(|err: Error| {
                    eprintln!("error: {err}");
                    Outcome::Problems
                }),
                None => Err(Outcome::Usage(format!(
                    "cache `{spec}` is kept in memory only (`persistent = false`): there is \
                     nothing saved to show"
                ))),
            },
            _ => Err(Outcome::Usage(format!(
                "`{spec}` names a cache of several managers: write MANAGER/CACHE"
            ))),
        }
    }
}

/// A key as typed on the command line: JSON if it parses as JSON, else a string.
fn key_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// `cacheman show CACHE [KEY]`.
pub(crate) fn show(
    views: &Views<'_>,
    spec: &str,
    key: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> io::Result<Outcome> {
    let found = try_outcome!(views.find(spec, "show"));
    let view = found.view();
    let Some(key) = key else {
        let rows = view.rows();
        if json {
            let rows: Vec<Value> = rows
                .into_iter()
                .map(|(k, v)| json!({ "key": k, "value": v }))
                .collect();
            print_json(out, &json!({ "cache": view.name(), "entries": rows }))?;
        } else {
            let (key_type, value_type) = view.types();
            writeln!(
                out,
                "{} ({key_type} -> {value_type}), {} entries",
                view.name(),
                rows.len()
            )?;
            for (k, v) in rows {
                writeln!(out, "{k} => {v}")?;
            }
        }
        return Ok(Outcome::Ok);
    };
    let key_value = key_of(key);
    let value = match view.get(&key_value) {
        Ok(value) => value,
        Err(reason) => return Ok(Outcome::Usage(reason)),
    };
    if json {
        print_json(
            out,
            &json!({ "cache": view.name(), "key": key_value, "value": value }),
        )?;
    } else {
        match &value {
            Some(value) => writeln!(out, "{value}")?,
            None => writeln!(out, "no entry for {key_value} in {}", view.name())?,
        }
    }
    Ok(if value.is_some() {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// `cacheman export CACHE`: every entry as JSON, whatever `--json` says.
pub(crate) fn export(views: &Views<'_>, spec: &str, out: &mut dyn Write) -> io::Result<Outcome> {
    let found = try_outcome!(views.find(spec, "export"));
    let rows: Vec<Value> = found
        .view()
        .rows()
        .into_iter()
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect();
    print_json(out, &Value::Array(rows))?;
    Ok(Outcome::Ok)
}

/// `cacheman why CACHE KEY`.
pub(crate) fn why(
    views: &Views<'_>,
    spec: &str,
    key: &str,
    json: bool,
    out: &mut dyn Write,
) -> io::Result<Outcome> {
    let found = try_outcome!(views.find(spec, "why"));
    let key_value = key_of(key);
    let explanation = match found.view().explain(&key_value) {
        Ok(explanation) => explanation,
        Err(reason) => return Ok(Outcome::Usage(reason)),
    };
    if json {
        let inputs: Vec<Value> = explanation
            .inputs
            .iter()
            .map(|input| {
                json!({
                    "from": input.from.to_string(),
                    "seen": format!("{:016x}", input.seen),
                    "now": input.now.map(|n| format!("{n:016x}")),
                    "changed": input.changed,
                })
            })
            .collect();
        print_json(
            out,
            &json!({
                "cache": explanation.cache,
                "key": key_value,
                "key_hash": format!("{:016x}", explanation.key_hash),
                "staleness": explanation.staleness.to_string(),
                "inputs": inputs,
            }),
        )?;
    } else {
        write!(out, "{key_value}: {explanation}")?;
    }
    Ok(Outcome::Ok)
}
