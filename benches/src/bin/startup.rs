//! Start-up benchmark program (workload 6): 1,000 `#[cached]` functions declared; it calls one
//! twice (a miss, then the first hit) and exits. `benches/startup.rs` times it from spawn to exit
//! against `startup_baseline`, the same program without cacheman.

include!(concat!(env!("OUT_DIR"), "/thousand.rs"));

fn main() {
    let first = f500(7);
    let hit = f500(7);
    assert_eq!(first, hit);
    // A miss then a hit on the first run; two hits once the file holds the value.
    assert!(f500_cache().stats().hits >= 1);
}
