//! `result` (only `Ok` is cached) with `?` in the body, on an alias of `Result`, with
//! `result_fallback`, and `option`.
#![deny(warnings)]

use std::io;

use cacheman::cached;

#[cached(persistent = false, result)]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = text.parse()?;
    Ok(n)
}

#[cached(persistent = false, result)]
fn read(name: &str) -> io::Result<String> {
    if name.is_empty() {
        return Err(io::Error::other("empty name"));
    }
    Ok(name.to_uppercase())
}

#[cached(persistent = false, result, ttl_secs = 60, result_fallback)]
fn fetch(url: &str) -> Result<String, io::Error> {
    if url.is_empty() {
        return Err(io::Error::other("no url"));
    }
    Ok(url.to_owned())
}

#[cached(persistent = false, option)]
fn find(values: &[u32], wanted: u32) -> Option<usize> {
    values.iter().position(|v| *v == wanted)
}

fn main() {
    assert_eq!(parse("4"), Ok(4));
    assert!(parse("x").is_err());
    assert_eq!(read("a").unwrap(), "A");
    assert!(read("").is_err());
    assert_eq!(find(&[1, 2], 2), Some(1));
    assert_eq!(find(&[1, 2], 3), None);
    assert_eq!(fetch("a").unwrap(), "a");
    assert!(fetch("").is_err());
    assert_eq!((parse_cache().len(), read_cache().len(), find_cache().len()), (1, 1, 1));
}
