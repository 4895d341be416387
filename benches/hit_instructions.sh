#!/usr/bin/env bash
# Instructions per hit of each kind of hit, counted by callgrind: unlike a time, a count does
# not depend on the machine's load (it moves by a few tenths with the hash seed of the run).
# Each program runs once for no rounds (start-up alone) and once for 2,000 rounds of 1,024
# hits; the difference over 2,048,000 is one hit. Prints one JSON object.
#
#   benches/hit_instructions.sh      # after cargo build --release -p benches --bin hit_loop --bin hit_kinds
#
# `hit_loop` is a program with one `#[cached]` function (what issue 13 was judged on);
# `hit_kinds` has one loop per kind of hit (see its documentation).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=2000
bin=target/release

# Instructions a run of `$@` executes, as callgrind counts them.
count() {
  local log
  log=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" >/dev/null 2>"$log"
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log"
  rm -f "$log"
}

# Instructions per hit of `$@` (a program and its kind), to two decimals.
per_hit() {
  local program=$1
  shift
  local idle busy
  idle=$(count "$program" 0 "$@")
  busy=$(count "$program" "$rounds" "$@")
  awk -v a="$idle" -v b="$busy" -v n="$((rounds * 1024))" 'BEGIN { printf "%.2f", (b - a) / n }'
}

fields="\"rounds\": $rounds, \"hit_loop\": $(per_hit $bin/hit_loop)"
for kind in fn fn_capacity fn_ttl cached_size get_plain get_bounded get_expiring; do
  fields="$fields, \"$kind\": $(per_hit $bin/hit_kinds "$kind")"
done
echo "{$fields}"
