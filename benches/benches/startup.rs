//! Workload 6 of BENCHMARKS.md: a program declaring 1,000 `#[cached]` functions, from spawn to
//! its first hit and exit, against the same program without cacheman. Declarations are collected
//! when the manager is first used; cache files load lazily, on first use of each cache.
//!
//! `cargo bench -p benches --bench startup`

use std::process::Command;
use std::time::Duration;

use criterion::Criterion;

fn run(program: &str, cache_dir: &std::path::Path) {
    let status = Command::new(program)
        .env("CACHEMAN_DIR", cache_dir)
        .status()
        .unwrap();
    assert!(status.success(), "{program} failed");
}

fn startup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("startup_1000_fns");
    group.bench_function("baseline_no_cacheman", |b| {
        b.iter(|| run(env!("CARGO_BIN_EXE_startup_baseline"), dir.path()))
    });
    group.bench_function("cacheman", |b| {
        b.iter(|| run(env!("CARGO_BIN_EXE_startup"), dir.path()))
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    startup(&mut criterion);
    criterion.final_summary();
}
