//! Integration tests of cacheman live in `tests/`; this crate holds what the helper processes
//! in `src/bin` share with the tests that drive them, and helpers the tests share.

pub mod child;
pub mod crash;
pub mod fleet;
pub mod redis_cluster;
pub mod redis_server;
pub mod support;
