#!/usr/bin/env python3
"""Turns one run of the benchmark suite into BENCHMARKS.md's results and docs/benchmarks.svg.

Reads criterion's estimates (target/criterion), the CacheMan (Python) figures, the memory
figures and the machine description that benches/run.sh leaves in target/bench-results, and
rewrites the part of BENCHMARKS.md between the `results` markers. Every figure is compared with
one measured in the same run: the machine is shared and noisy, so only ratios mean anything.

Standard library only.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRITERION = os.path.join(ROOT, "target", "criterion")
RESULTS = os.path.join(ROOT, "target", "bench-results")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def ns(group, bench):
    """Mean nanoseconds per element (per lookup, per miss, per save) of a criterion benchmark."""
    base = os.path.join(CRITERION, group, bench, "new")
    with open(os.path.join(base, "estimates.json")) as f:
        mean = json.load(f)["mean"]["point_estimate"]
    with open(os.path.join(base, "benchmark.json")) as f:
        throughput = json.load(f).get("throughput") or {}
    return mean / throughput.get("Elements", 1)


def load(name):
    with open(os.path.join(RESULTS, name)) as f:
        return json.load(f)


def fmt_time(nanos):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if nanos >= scale:
            return f"{nanos / scale:.3g} {unit}"
    return f"{nanos:.3g} ns"


def verdict(value, goal, higher_is_better):
    met = value >= goal if higher_is_better else value <= goal
    return "met" if met else "**missed**"


def goal_rows():
    """(workload, what, figure, goal, verdict) for every goal of issues 5 and 18."""
    rows = []

    def ratio(workload, what, value, goal, higher_is_better):
        sign = "≥" if higher_is_better else "≤"
        rows.append(
            (workload, what, f"{value:.3g}×", f"{sign} {goal}×", verdict(value, goal, higher_is_better))
        )

    hit = lambda b: ns("hit_1_thread", b)
    hit2 = lambda b: ns("hit_2_threads", b)
    ratio("1. hit, 1 thread", "cacheman / `cached` `#[cached]` (criterion, apart)", hit("cacheman") / hit("cached"), 1.0, False)
    ratio("1. hit, 1 thread", "cacheman / bare `HashMap` (foldhash) (criterion, apart)", hit("cacheman") / hit("hashmap_no_lock"), 1.5, False)
    turns = load("hit_ratio.json")
    how = f"(in turn, {turns['window_ms']} ms windows, {turns['rounds']} rounds)"
    ratio("1. hit, 1 thread", f"cacheman / `cached` `#[cached]` {how}", turns["cacheman_over_cached"], 1.0, False)
    ratio("1. hit, 1 thread", f"cacheman / bare `HashMap` (foldhash) {how}", turns["cacheman_over_hashmap"], 1.5, False)
    if "rwlock_over_cached" in turns:
        rows.append(("1. hit, 1 thread",
                     f"`RwLock<HashMap>`, one lock and nothing else (not a goal, for comparison) / `cached`, "
                     f"/ bare `HashMap` {how}",
                     f"{turns['rwlock_over_cached']:.3g}× / {turns['rwlock_over_hashmap']:.3g}×", "", ""))
    ratio("2. hit, 2 threads", "cacheman / `cached` `#[cached]`", hit2("cacheman") / hit2("cached"), 0.8, False)

    for name in ("cacheman", "cached"):
        one, two = ns("miss_1_thread", name), ns("miss_2_threads", name)
        label = "cacheman" if name == "cacheman" else "`cached` (not a goal, for comparison)"
        value = one / two
        if name == "cacheman":
            ratio("3. misses, 2 threads", f"{label}: throughput / 1 thread (criterion, apart)", value, 1.6, True)
            inter = load("miss_scaling.json")
            ratio("3. misses, 2 threads",
                  f"{label}: throughput / 1 thread (alternating {inter['window_ms']} ms windows, "
                  f"{inter['rounds']} rounds; per round {inter['ratio_min']:.2f}–{inter['ratio_max']:.2f})",
                  inter["ratio"], 1.6, True)
        else:
            rows.append(("3. misses, 2 threads", f"{label}: throughput / 1 thread", f"{value:.3g}×", "", ""))

    save = ns("save_1m", "cacheman")
    py = load("cacheman_py.json")
    ratio("4. save 1M", "cacheman / `std::fs::write` + fsync of as many bytes (criterion, apart)", save / ns("save_1m", "std_write_fsync"), 1.5, False)
    turns = load("save_ratio.json")
    ratio("4. save 1M",
          f"cacheman / `std::fs::write` + fsync of as many bytes (in turn, {turns['rounds']} rounds, medians "
          f"{turns['cacheman_save_ms']:.0f} / {turns['std_write_fsync_ms']:.1f} ms; per round "
          f"{turns['ratio_min']:.2f}–{turns['ratio_max']:.2f})",
          turns["ratio"], 1.5, False)
    # Against CacheMan, our save as timed in turn (the steadier figure). CacheMan does not fsync:
    # the estimate without ours takes off the fsync of as many bytes, timed on its own in turn.
    ours_ms, fsync_ms = turns["cacheman_save_ms"], turns["std_fsync_ms"]
    ratio("4. save 1M", f"CacheMan (no fsync) / cacheman (with fsync; in turn, {ours_ms:.0f} ms)",
          py["save_s"] * 1e3 / ours_ms, 5, True)
    ratio("4. save 1M", f"CacheMan / cacheman without fsync (estimate: {ours_ms:.0f} − {fsync_ms:.1f} ms, "
          "the fsync of as many bytes, in turn)", py["save_s"] * 1e3 / max(ours_ms - fsync_ms, 1e-3), 5, True)
    ratio("4. load 1M", "CacheMan / cacheman", py["load_s"] * 1e9 / ns("load_1m", "cacheman"), 10, True)
    ratio("4. save 1M", "`cached` disk store filling them / cacheman save", ns("save_1m", "cached_disk_store_fill") / save, 1, True)

    quiet = ns("insert_1000", "no_save_running")
    busy = ns("insert_1000", "save_of_1m_running")
    ratio("5. inserts during a 1M save", "throughput / no save running (criterion, apart)", quiet / busy, 0.8, True)
    inter = load("autosync_ratio.json")
    ratio("5. inserts during a 1M save",
          f"throughput / no save running (alternating {inter['window_ms']} ms windows, {inter['rounds']} rounds)",
          inter["ratio"], 0.8, True)

    extra_ms = (ns("startup_1000_fns", "cacheman") - ns("startup_1000_fns", "baseline_no_cacheman")) / 1e6
    rows.append(
        ("6. start-up, 1,000 fns", "to first hit, beyond the same program without cacheman",
         f"{extra_ms:.2f} ms", "< 5 ms", verdict(extra_ms, 5, False))
    )

    rows += bounded_rows(ratio)

    mem = {k: load(f"memory_{k}.json")["bytes_per_entry"] for k in ("hashmap", "cacheman", "cacheman_persistent")}
    rows.append(
        ("7. memory, 1M u64 → u64", "bytes per entry: memory cache / persistent cache / `HashMap`",
         f"{mem['cacheman']:.1f} / {mem['cacheman_persistent']:.1f} / {mem['hashmap']:.1f}",
         "(report)", f"{mem['cacheman'] / mem['hashmap']:.2f}× / {mem['cacheman_persistent'] / mem['hashmap']:.2f}×")
    )
    return rows


def bounded_rows(ratio):
    """Workload 8 (issue 18): hits of bounded and expiring caches, in turn, and hit rates."""
    rows = []
    if not os.path.exists(os.path.join(RESULTS, "bounded_ratio.json")):
        return rows
    turns = load("bounded_ratio.json")
    how = f"(in turn, {turns['window_ms']} ms windows, {turns['rounds']} rounds)"
    for t, label in ((1, "1 thread"), (2, "2 threads")):
        ratio(f"8. bounded hit, {label}", f"`capacity(10_000)` / quick_cache {how}",
              turns[f"bounded_over_quick_cache_{t}t"], 1.2, False)
        ratio(f"8. expiring hit, {label}", f"`ttl(1 h)` / unbounded cacheman {how}",
              turns[f"expiring_over_unbounded_{t}t"], 1.3, False)
        ratio(f"8. bounded `#[cached]`, {label}",
              f"`#[cached(capacity = 10_000)]` / `cached`'s `#[cached(size = 10_000)]` {how}",
              turns[f"fn_capacity_over_cached_size_{t}t"], 1.0 if t == 1 else 0.5, False)
    rates = load("hit_rate.json")
    for case in rates["zipf"]:
        what = f"Zipf s = {case['s']}, capacity {case['capacity']:,}: hit rate"
        ours, lru, quick = case["cacheman"], case["lru"], case["quick_cache"]
        rows.append((f"8. hit rate", f"{what}, cacheman / exact LRU / quick_cache",
                     f"{ours:.3f} / {lru:.3f} / {quick:.3f}", "≥ LRU, ≥ quick_cache − 0.02",
                     verdict(min(ours - lru, ours - quick + 0.02), 0, True)))
    scan = rates["scan"]
    rows.append(("8. scan resistance", "of the 100 hottest keys, kept through a one-off scan of "
                 "20,000 keys (capacity 1,000): cacheman / exact LRU / quick_cache",
                 " / ".join(str(scan[c]["hot_kept_of_100"]) for c in ("cacheman", "lru", "quick_cache")),
                 "(report)", ""))
    return rows


def figure_rows():
    """Every measured figure, as (benchmark, contender, time per element)."""
    rows = []
    for group in sorted(os.listdir(CRITERION)):
        path = os.path.join(CRITERION, group)
        if not os.path.isdir(path) or group == "report":
            continue
        for bench in sorted(os.listdir(path)):
            if os.path.exists(os.path.join(path, bench, "new", "estimates.json")):
                rows.append((group, bench, fmt_time(ns(group, bench))))
    py = load("cacheman_py.json")
    rows.append(("python_cacheman", "save_1m (pickle, no fsync)", fmt_time(py["save_s"] * 1e9)))
    rows.append(("python_cacheman", "load_1m (pickle)", fmt_time(py["load_s"] * 1e9)))
    rows.append(("python_cacheman", "hit (dict lookup through the cache)", fmt_time(py["hit_ns"])))
    return rows


def svg_chart():
    """Grouped horizontal bars: ns per hit, one and two threads, for every contender."""
    names = ["cacheman", "cached", "moka", "quick_cache", "mutex_hashmap", "hashmap_no_lock"]
    series = [("1 thread", "hit_1_thread", "#4e79a7"), ("2 threads", "hit_2_threads", "#f28e2b")]
    values = {}
    for label, group, _ in series:
        for name in names:
            try:
                values[(label, name)] = ns(group, name)
            except FileNotFoundError:
                pass
    top = max(values.values())
    width, left, bar, gap = 640, 130, 14, 12
    rows_height = len(names) * (len(series) * bar + gap)
    height = rows_height + 70
    scale = (width - left - 70) / top
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">'
        f"Hit of a memoized fn(u64) -&gt; u64, ns per lookup (lower is better)</text>",
    ]
    y = 34
    for name in names:
        out.append(f'<text x="{left - 8}" y="{y + bar + 4}" text-anchor="end">{name}</text>')
        for label, _, color in series:
            if (label, name) in values:
                v = values[(label, name)]
                out.append(f'<rect x="{left}" y="{y}" width="{v * scale:.1f}" height="{bar - 2}" fill="{color}"/>')
                out.append(f'<text x="{left + v * scale + 4:.1f}" y="{y + bar - 4}">{v:.1f}</text>')
            y += bar
        y += gap
    lx = left
    for label, _, color in series:
        out.append(f'<rect x="{lx}" y="{y + 6}" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{lx + 16}" y="{y + 16}">{label}</text>')
        lx += 100
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    machine = open(os.path.join(RESULTS, "machine.txt")).read().strip()
    lines = [BEGIN, "", "### Machine and versions", "", "```", machine, "```", ""]
    lines += ["### Goals (ratios within this run)", "", "| workload | figure | result | goal | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {w} | {what} | {fig} | {goal} | {v} |" for w, what, fig, goal, v in goal_rows()]
    lines += ["", "### Every figure (time per element: lookup, miss, save, load or program run)", ""]
    lines += ["| benchmark | contender | time |", "|---|---|---|"]
    lines += [f"| {g} | {b} | {t} |" for g, b, t in figure_rows()]
    lines += ["", "![Hit latency of cacheman and its peers](docs/benchmarks.svg)", "", END]
    block = "\n".join(lines)

    path = os.path.join(ROOT, "BENCHMARKS.md")
    text = open(path).read()
    if BEGIN not in text or END not in text:
        sys.exit(f"{path} has no {BEGIN} ... {END} section to fill")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(path, "w") as f:
        f.write(head + block + tail)
    with open(os.path.join(ROOT, "docs", "benchmarks.svg"), "w") as f:
        f.write(svg_chart())
    print(f"wrote {path} and docs/benchmarks.svg")


if __name__ == "__main__":
    main()
