//! A hit of a `#[cached]` function with a `&str` argument against one with a `u64` argument,
//! in short windows taken in turn (the order rotates every round), so that a slow second of the
//! shared host slows both alike. A third contender looks the same `&str` keys up the way
//! `#[cached]` did before lookups borrowed their arguments: build the owned `String` key, then
//! look it up through the cache's handle. Keys are 1,024 warm words of 9 bytes (`word-0042`)
//! and the same number of `u64`s, visited in the same shuffled order.
//!
//! `cargo run --release -p benches --bin str_hit_ratio [ROUNDS]` prints one JSON object.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::{HOT_KEYS, count_arg, hot_keys};

const WINDOW_MS: u64 = 20;

#[cacheman::cached(persistent = false)]
fn square(n: u64) -> u64 {
    n.wrapping_mul(n)
}

#[cacheman::cached(persistent = false)]
fn word_length(word: &str) -> usize {
    word.len()
}

/// Passes over the keys for `WINDOW_MS`; returns (lookups, elapsed).
fn window(pass: &dyn Fn() -> u64) -> (u64, Duration) {
    let start = Instant::now();
    let mut lookups = 0;
    while start.elapsed() < Duration::from_millis(WINDOW_MS) {
        lookups += pass();
    }
    (lookups, start.elapsed())
}

fn main() {
    let rounds = count_arg(150);
    let _dir = benches::private_cache_dir();
    let numbers = hot_keys();
    let words: Vec<String> = numbers.iter().map(|k| format!("word-{k:04}")).collect();
    for (&n, word) in numbers.iter().zip(&words) {
        square(n);
        word_length(word);
    }
    let handle = word_length_cache();
    // Through `&dyn Fn`, as in `hit_ratio.rs`: every contender pays the same call.
    let contenders: [(&str, &dyn Fn() -> u64); 3] = [
        ("u64_arg", &|| {
            for &n in &numbers {
                black_box(square(black_box(n)));
            }
            numbers.len() as u64
        }),
        ("str_arg", &|| {
            for word in &words {
                black_box(word_length(black_box(word.as_str())));
            }
            words.len() as u64
        }),
        ("str_owned_key", &|| {
            for word in &words {
                let key = black_box(word.as_str()).to_owned();
                black_box(handle.get_or_insert_with(key, || unreachable!()));
            }
            words.len() as u64
        }),
    ];
    for (_, pass) in contenders {
        window(pass);
    }
    let mut totals = [(0u64, Duration::ZERO); 3];
    for round in 0..rounds {
        for i in 0..contenders.len() {
            let which = (round + i) % contenders.len();
            let (n, t) = window(contenders[which].1);
            totals[which] = (totals[which].0 + n, totals[which].1 + t);
        }
    }
    assert_eq!(
        square_cache().stats().misses,
        HOT_KEYS,
        "every timed call was a hit"
    );
    assert_eq!(
        handle.stats().misses,
        HOT_KEYS,
        "every timed call was a hit"
    );
    let ns = |(n, t): (u64, Duration)| t.as_nanos() as f64 / n as f64;
    let [number, word, owned] = totals.map(ns);
    println!(
        "{{\"rounds\": {rounds}, \"window_ms\": {WINDOW_MS}, \"u64_arg_ns\": {number:.2}, \
         \"str_arg_ns\": {word:.2}, \"str_owned_key_ns\": {owned:.2}, \
         \"str_over_u64\": {:.3}, \"str_owned_key_over_u64\": {:.3}, \
         \"str_over_str_owned_key\": {:.3}}}",
        word / number,
        owned / number,
        word / owned,
    );
}
