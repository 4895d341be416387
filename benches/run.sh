#!/usr/bin/env bash
# Runs the whole benchmark suite in one go (about 10 minutes on 2 cores), CacheMan (Python)
# included, and writes the results into BENCHMARKS.md and docs/benchmarks.svg.
#
#   benches/run.sh            # everything
#   BENCH_TIME=1 benches/run.sh   # shorter measurements, for a quick look
#
# Run it on a quiet machine: only ratios between figures of one run are meaningful.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/bench-results
mkdir -p "$out"
rm -rf target/criterion
time="${BENCH_TIME:-3}"

{
  echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "memory:  $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at start"
  echo "rustc:   $(rustc -V)"
  echo "python:  $(python3 -V 2>&1), CacheMan 2.2.0"
  for crate in cached moka quick_cache criterion postcard; do
    version=$(awk -v c="$crate" '$0 == "name = \"" c "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
    echo "crate:   $crate $version"
  done
} > "$out/machine.txt"
cat "$out/machine.txt"

cargo bench -p benches --bench hits --bench misses --bench startup --bench save_load --bench autosync \
  -- --warm-up-time 1 --measurement-time "$time"

python3 benches/python/cacheman_bench.py --out "$out/cacheman_py.json"

cargo build --release -p benches --bin memory --bin autosync_ratio --bin miss_scaling \
  --bin hit_ratio --bin save_ratio --bin bounded_ratio --bin hit_rate --bin journal_ratio \
  --bin journal_peer --bin compaction_wait
# Workloads 1, 3, 4 and 5 again, in turns: the ratios the goals are judged on. save_ratio
# also times CacheMan's save and load in its rounds (through cacheman_bench.py --serve).
./target/release/hit_ratio | tee "$out/hit_ratio.json"
./target/release/miss_scaling | tee "$out/miss_scaling.json"
./target/release/save_ratio 25 --cacheman-py | tee "$out/save_ratio.json"
./target/release/autosync_ratio | tee "$out/autosync_ratio.json"
# Instructions per hit of each kind, counted rather than timed (skipped without valgrind).
if command -v valgrind >/dev/null; then
  cargo build --release -p benches --bin hit_loop --bin hit_kinds
  benches/hit_instructions.sh | tee "$out/hit_instructions.json"
else
  rm -f "$out/hit_instructions.json"
fi
# Workload 8: bounded and expiring caches' hits in turn, and hit rates on Zipf traces.
./target/release/bounded_ratio | tee "$out/bounded_ratio.json"
./target/release/hit_rate | tee "$out/hit_rate.json"
# Workload 10: saves that append what changed, write amplification, load with a journal.
./target/release/journal_ratio | tee "$out/journal_ratio.json"
# And a save during a background compaction, against one during compact() (no waiting).
./target/release/compaction_wait | tee "$out/compaction_wait.json"
# Its peer: `cached` 4.x's RedbCache (durable changes, hits, restart).
./target/release/journal_peer | tee "$out/journal_peer.json"
for kind in hashmap cacheman cacheman_persistent; do
  ./target/release/memory "$kind" | tee "$out/memory_$kind.json"
done

# Workload 9: caches on Redis against `cached`'s RedisCache on the same server. Uses the server
# of CACHEMAN_REDIS_URL, else starts redis-server (no persistence) for the run if it is
# installed; without either the program says it was skipped.
cargo build --release -p benches --bin redis_ratio
bench_redis_pid=""
if [ -z "${CACHEMAN_REDIS_URL:-}" ] && command -v redis-server >/dev/null 2>&1; then
  bench_redis_port=$((20000 + RANDOM % 40000))
  redis-server --port "$bench_redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$out" >/dev/null 2>&1 &
  bench_redis_pid=$!
  for _ in $(seq 1 100); do
    redis-cli -p "$bench_redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export CACHEMAN_REDIS_URL="redis://127.0.0.1:$bench_redis_port/"
fi
./target/release/redis_ratio | tee "$out/redis_ratio.json"
if [ -n "$bench_redis_pid" ]; then
  kill "$bench_redis_pid"
  wait "$bench_redis_pid" 2>/dev/null || true
fi

python3 benches/report.py
