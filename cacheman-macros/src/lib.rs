//! Procedural macros of [`cacheman`](https://docs.rs/cacheman). Use them through the `cacheman` crate,
//! which re-exports them; this crate's paths are not stable on their own.

mod calls;
mod check;
mod expand;
mod key;
mod parse;

use proc_macro::TokenStream;

/// Caches a function's results in a named, persistent, dependency-aware cache. Documented,
/// with examples, where `cacheman` re-exports it: `cacheman::cached`.
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::cached(attr.into(), item.into()).into()
}
