//! Procedural macros of [`cacheman`](https://docs.rs/cacheman). Use them through the `cacheman` crate,
//! which re-exports them; this crate's paths are not stable on their own.
