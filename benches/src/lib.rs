//! Criterion benchmarks of cacheman live in `benches/`; this crate has no code of its own.
