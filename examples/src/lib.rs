//! cacheman's examples; run one with `cargo run --example NAME`.
