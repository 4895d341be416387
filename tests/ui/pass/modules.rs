//! `depends_on` paths across modules, visibility, docs and `cfg` kept on every item.
#![deny(missing_docs, warnings)]

use cacheman::cached;

/// Raw data.
pub mod source {
    use cacheman::cached;

    /// Reads a record.
    #[cached(persistent = false)]
    pub fn record(id: u32) -> u64 {
        u64::from(id)
    }

    #[cached(persistent = false)]
    pub(crate) fn internal(id: u32) -> u64 {
        u64::from(id)
    }
}

/// Derived from both functions of `source`.
#[cached(persistent = false, depends_on = [source::record, crate::source::internal])]
pub fn derived(id: u32) -> u64 {
    source::record(id) + source::internal(id)
}

#[cfg(any())]
#[cached]
fn never_compiled(id: u32) -> u64 {
    does_not_exist(id)
}

fn main() {
    assert_eq!(derived(2), 4);
    let manager = cacheman::get_cache_manager();
    assert_eq!(manager.dependents_of("record"), vec!["derived"]);
    assert_eq!(manager.dependents_of("internal"), vec!["derived"]);
    manager.check_declarations().unwrap();
}
