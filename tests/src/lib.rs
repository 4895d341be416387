//! Integration tests of cacheman live in `tests/`; this crate holds only what the helper
//! processes in `src/bin` share with the tests that drive them.

pub mod crash;
