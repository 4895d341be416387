//! Several arguments, references, patterns, `mut` bindings, and names the macro itself uses.
#![deny(warnings)]

use std::path::Path;

use cacheman::cached;

#[cached(persistent = false)]
fn describe(id: u32, label: &str, parts: &[u16], path: &Path, key: u8, cache: bool) -> String {
    format!("{id} {label} {parts:?} {} {key} {cache}", path.display())
}

#[cached(persistent = false)]
fn patterns((a, b): (u32, u32), mut total: u32, _: u8) -> u32 {
    total += a * b;
    total
}

#[cached(persistent = false)]
fn nothing() -> u64 {
    7
}

#[cached(persistent = false)]
fn unit(n: u32) {
    let _ = n;
}

fn main() {
    let text = describe(1, "x", &[2, 3], Path::new("/a"), 4, true);
    assert_eq!(text, "1 x [2, 3] /a 4 true");
    let handle: cacheman::Cache<(u32, String, Vec<u16>, std::path::PathBuf, u8, bool), String> =
        describe_cache();
    assert_eq!(handle.len(), 1);
    assert_eq!(patterns((2, 3), 1, 0), 7);
    assert_eq!(patterns_cache().keys(), vec![((2, 3), 1, 0)]);
    assert_eq!(nothing(), 7);
    assert_eq!(nothing_cache().keys(), vec![()]);
    unit(1);
    let mut buffer = vec![1];
    assert_eq!(appended(&mut buffer, 2), 2);
    assert_eq!(appended(&mut vec![1], 2), 2, "keyed on the buffer's contents");
    assert_eq!(buffer, vec![1, 2]);
}

#[cached(persistent = false)]
fn appended(buffer: &mut Vec<u8>, byte: u8) -> usize {
    buffer.push(byte);
    buffer.len()
}
