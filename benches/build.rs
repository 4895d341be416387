//! Writes the 1,000 `#[cached]` functions of the start-up benchmark (`src/bin/startup.rs`):
//! a real program's worth of declarations, without a 1,000-function source file in the tree.

use std::fmt::Write;

fn main() {
    let mut source = String::new();
    for i in 0..1_000 {
        // Every tenth function depends on the one before it, so the graph has edges to build.
        let depends = if i % 10 == 9 {
            format!(", depends_on = \"f{}\"", i - 1)
        } else {
            String::new()
        };
        writeln!(
            source,
            "#[cacheman::cached(name = \"f{i}\"{depends})]\n\
             pub fn f{i}(n: u64) -> u64 {{ n.wrapping_mul({i}) }}"
        )
        .unwrap();
    }
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("thousand.rs");
    std::fs::write(out, source).unwrap();
    println!("cargo::rerun-if-changed=build.rs");
}
