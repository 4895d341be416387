#!/usr/bin/env python3
"""Turns one run of the benchmark suite into BENCHMARKS.md's results and docs/benchmarks.svg.

Reads criterion's estimates (target/criterion), the CacheMan (Python) figures, the memory
figures and the machine description that benches/run.sh leaves in target/bench-results, and
rewrites the part of BENCHMARKS.md between the `results` markers. Every figure is compared with
one measured in the same run: the machine is shared and noisy, so only ratios mean anything.

The prose around the results quotes figures of the same run through markers,
`<!--f:NAME-->1.65×<!--/f-->`: this script rewrites what stands between them from `figures()`,
and stops on a name it does not know, so the prose never carries a figure of another run.

Standard library only.
"""

import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRITERION = os.path.join(ROOT, "target", "criterion")
RESULTS = os.path.join(ROOT, "target", "bench-results")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
FIGURE = re.compile(r"<!--f:([a-z0-9_.]+)-->(.*?)<!--/f-->")


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


def ratio_text(value):
    return f"{value:.3g}×"


def ms_text(value):
    return f"{value:.3g} ms" if value < 1000 else f"{value:,.0f} ms"


def figures():
    """Every figure the prose quotes, by name, as text: each from this run's results."""
    turns = load("hit_ratio.json")
    misses = load("miss_scaling.json")
    save = load("save_ratio.json")
    sync = load("autosync_ratio.json")
    hit = lambda b: ns("hit_1_thread", b)
    hit2 = lambda b: ns("hit_2_threads", b)
    miss = lambda threads, b: ns(f"miss_{threads}_thread{'s' if threads > 1 else ''}", b)
    no_fsync_ms = save["cacheman_save_ms"] - save["std_fsync_ms"]
    out = {
        "hit.over_cached": ratio_text(turns["cacheman_over_cached"]),
        "hit.over_hashmap": ratio_text(turns["cacheman_over_hashmap"]),
        "hit.rwlock_over_cached": ratio_text(turns["rwlock_over_cached"]),
        "hit.rwlock_over_hashmap": ratio_text(turns["rwlock_over_hashmap"]),
        "hit.persistent_over_cached": ratio_text(turns["persistent_over_cached"]),
        "hit.persistent_over_memory": ratio_text(turns["persistent_over_memory"]),
        "hit.criterion_over_cached": ratio_text(hit("cacheman") / hit("cached")),
        "hit2.over_cached": ratio_text(hit2("cacheman") / hit2("cached")),
        "hit2.persistent_over_cached": ratio_text(hit2("cacheman_persistent") / hit2("cached")),
        "miss.ratio": ratio_text(misses["ratio"]),
        "miss.ratio_range": f"{misses['ratio_min']:.2f}–{misses['ratio_max']:.2f}",
        "miss.criterion_ratio": ratio_text(miss(1, "cacheman") / miss(2, "cacheman")),
        "miss.persistent_ratio": ratio_text(misses["persistent_ratio"]),
        "miss.persistent_over_memory": ratio_text(misses["persistent_over_memory_1_thread"]),
        "miss.ours_ns": f"{miss(1, 'cacheman'):.0f} ns",
        "miss.cached_ns": f"{miss(1, 'cached'):.0f} ns",
        "save.ratio": ratio_text(save["ratio"]),
        "save.ratio_range": f"{save['ratio_min']:.2f}–{save['ratio_max']:.2f}",
        "save.ms": ms_text(save["cacheman_save_ms"]),
        "save.write_ms": ms_text(save["std_write_fsync_ms"]),
        "save.fsync_ms": ms_text(save["std_fsync_ms"]),
        "save.no_fsync_ms": ms_text(no_fsync_ms),
        "save.criterion_ratio": ratio_text(ns("save_1m", "cacheman") / ns("save_1m", "std_write_fsync")),
        "save.bytebuf_ms": ms_text(ns("save_1m", "cacheman_bytebuf") / 1e6),
        "save.vec_ms": ms_text(ns("save_1m", "cacheman") / 1e6),
        "save.py_ms": ms_text(save["cacheman_py_save_ms"]),
        "save.py_over_ours": ratio_text(save["cacheman_py_save_ms"] / save["cacheman_save_ms"]),
        "save.py_over_ours_no_fsync": ratio_text(save["cacheman_py_save_ms"] / max(no_fsync_ms, 1e-3)),
        "save.goal_ms": ms_text(save["cacheman_py_save_ms"] / 5),
        "load.ms": ms_text(save["cacheman_load_ms"]),
        "load.open_ms": ms_text(save["cacheman_open_ms"]),
        "load.py_ms": ms_text(save["cacheman_py_load_ms"]),
        "load.py_over_ours": ratio_text(save["cacheman_py_load_ms"] / save["cacheman_load_ms"]),
        "load.goal_ms": ms_text(save["cacheman_py_load_ms"] / 10),
        "load.std_read_ms": ms_text(ns("load_1m", "std_read") / 1e6),
        "autosync.ratio": ratio_text(sync["ratio"]),
        "autosync.criterion_ratio": ratio_text(
            ns("insert_1000", "no_save_running") / ns("insert_1000", "save_of_1m_running")),
    }
    return out


def goal_rows():
    """(workload, what, figure, goal, verdict) for every goal of issues 5 and 18, and rows
    beside them that are not goals (no goal, no verdict)."""
    rows = []

    def ratio(workload, what, value, goal, higher_is_better):
        sign = "≥" if higher_is_better else "≤"
        rows.append(
            (workload, what, ratio_text(value), f"{sign} {goal}×", verdict(value, goal, higher_is_better))
        )

    def beside(workload, what, figure):
        rows.append((workload, f"{what} (not a goal, for comparison)", figure, "", ""))

    hit = lambda b: ns("hit_1_thread", b)
    hit2 = lambda b: ns("hit_2_threads", b)
    ratio("1. hit, 1 thread", "cacheman / `cached` `#[cached]` (criterion, apart)", hit("cacheman") / hit("cached"), 1.0, False)
    ratio("1. hit, 1 thread", "cacheman / bare `HashMap` (foldhash) (criterion, apart)", hit("cacheman") / hit("hashmap_no_lock"), 1.5, False)
    turns = load("hit_ratio.json")
    how = f"(in turn, {turns['window_ms']} ms windows, {turns['rounds']} rounds)"
    ratio("1. hit, 1 thread", f"cacheman / `cached` `#[cached]` {how}", turns["cacheman_over_cached"], 1.0, False)
    ratio("1. hit, 1 thread", f"cacheman / bare `HashMap` (foldhash) {how}", turns["cacheman_over_hashmap"], 1.5, False)
    beside("1. hit, 1 thread", f"`RwLock<HashMap>`, one lock and nothing else / `cached`, / bare `HashMap` {how}",
           f"{ratio_text(turns['rwlock_over_cached'])} / {ratio_text(turns['rwlock_over_hashmap'])}")
    beside("1. hit, 1 thread", f"default `#[cached]` (persistent) / `cached`, / memory cache {how}",
           f"{ratio_text(turns['persistent_over_cached'])} / {ratio_text(turns['persistent_over_memory'])}")
    ratio("2. hit, 2 threads", "cacheman / `cached` `#[cached]`", hit2("cacheman") / hit2("cached"), 0.8, False)
    beside("2. hit, 2 threads", "default `#[cached]` (persistent) / `cached`, / memory cache",
           f"{ratio_text(hit2('cacheman_persistent') / hit2('cached'))} / "
           f"{ratio_text(hit2('cacheman_persistent') / hit2('cacheman'))}")

    miss = lambda threads, b: ns(f"miss_{threads}_thread{'s' if threads > 1 else ''}", b)
    ratio("3. misses, 2 threads", "cacheman: throughput / 1 thread (criterion, apart)",
          miss(1, "cacheman") / miss(2, "cacheman"), 1.6, True)
    inter = load("miss_scaling.json")
    how = f"(in turn, {inter['window_ms']} ms windows, {inter['rounds']} rounds"
    ratio("3. misses, 2 threads",
          f"cacheman: throughput / 1 thread {how}; per round {inter['ratio_min']:.2f}–{inter['ratio_max']:.2f})",
          inter["ratio"], 1.6, True)
    beside("3. misses, 2 threads",
           f"default `#[cached]` (persistent): throughput / 1 thread {how}; per round "
           f"{inter['persistent_ratio_min']:.2f}–{inter['persistent_ratio_max']:.2f})",
           ratio_text(inter["persistent_ratio"]))
    beside("3. misses, 1 thread", f"default `#[cached]` (persistent) / memory cache, time per miss {how})",
           ratio_text(inter["persistent_over_memory_1_thread"]))
    beside("3. misses, 2 threads", "`cached`: throughput / 1 thread (criterion, apart)",
           ratio_text(miss(1, "cached") / miss(2, "cached")))

    save = ns("save_1m", "cacheman")
    baseline = "a durable write of as many bytes (new file, fsync, rename, directory fsync)"
    ratio("4. save 1M", f"cacheman / {baseline} (criterion, apart)", save / ns("save_1m", "std_write_fsync"), 1.5, False)
    turns = load("save_ratio.json")
    how = f"in turn, {turns['rounds']} rounds, medians"
    ratio("4. save 1M",
          f"cacheman / {baseline} ({how} {turns['cacheman_save_ms']:.0f} / {turns['std_write_fsync_ms']:.0f} ms; "
          f"per round {turns['ratio_min']:.2f}–{turns['ratio_max']:.2f})",
          turns["ratio"], 1.5, False)
    # CacheMan does not fsync: the estimate without ours takes off the fsync of as many bytes,
    # timed in the same rounds.
    ours_ms, fsync_ms, py_ms = turns["cacheman_save_ms"], turns["std_fsync_ms"], turns["cacheman_py_save_ms"]
    ratio("4. save 1M", f"CacheMan (no fsync) / cacheman (with fsync) ({how} {py_ms:.0f} / {ours_ms:.0f} ms)",
          py_ms / ours_ms, 5, True)
    ratio("4. save 1M", f"CacheMan / cacheman without fsync (estimate: {ours_ms:.0f} − {fsync_ms:.0f} ms, "
          f"the fsync of as many bytes; {how})", py_ms / max(ours_ms - fsync_ms, 1e-3), 5, True)
    py_load, load_ms = turns["cacheman_py_load_ms"], turns["cacheman_load_ms"]
    ratio("4. load 1M", f"CacheMan / cacheman, both reloading over the entries they hold ({how} "
          f"{py_load:.0f} / {load_ms:.0f} ms)", py_load / load_ms, 10, True)
    beside("4. load 1M", f"CacheMan reload / cacheman opening the file into an empty cache ({how} "
           f"{py_load:.0f} / {turns['cacheman_open_ms']:.0f} ms)", ratio_text(py_load / turns["cacheman_open_ms"]))
    ratio("4. save 1M", "`cached` disk store filling them / cacheman save (criterion)", ns("save_1m", "cached_disk_store_fill") / save, 1, True)

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
    rows += redis_rows(ratio)
    rows += journal_rows(ratio)

    mem = {k: load(f"memory_{k}.json")["bytes_per_entry"] for k in ("hashmap", "cacheman", "cacheman_persistent")}
    rows.append(
        ("7. memory, 1M u64 → u64", "bytes per entry: memory cache / persistent cache / `HashMap`",
         f"{mem['cacheman']:.1f} / {mem['cacheman_persistent']:.1f} / {mem['hashmap']:.1f}",
         "(report)", f"{mem['cacheman'] / mem['hashmap']:.2f}× / {mem['cacheman_persistent'] / mem['hashmap']:.2f}×")
    )
    return rows


def journal_rows(ratio):
    """Workload 10 (issue 16): saves that append what changed, write amplification, load with a
    journal."""
    if not os.path.exists(os.path.join(RESULTS, "journal_ratio.json")):
        return []
    j = load("journal_ratio.json")
    rows = []
    ratio("9. save of changes", f"save of 10 changed entries of 1M / full rewrite (compaction) "
          f"(in turn, {j['rounds']} rounds, medians {j['append_10_ms']:.2f} / {j['full_save_ms']:.0f} ms)",
          j["append_over_full"], 0.01, False)
    ratio("9. save of changes", f"bytes written / bytes of the changes, 1,000 inserts/s for 60 s, "
          f"default autosync, simulated clock ({j['autosync_saves']} saves)",
          j["write_amplification"], 3, False)
    rows.append(("9. save of changes", f"the same for {j['long_seconds']} s ({j['long_saves']} saves, "
                 "compactions included) (not a goal, for comparison)",
                 ratio_text(j["long_write_amplification"]), "", ""))
    ratio("9. save of changes", f"a new process's load with a journal half the snapshot's size / from the "
          f"snapshot alone ({j['journal_bytes'] / 1e6:.0f} + {j['snapshot_bytes'] / 1e6:.0f} MB; in turn, "
          f"medians {j['start_with_journal_ms']:.0f} / {j['start_snapshot_ms']:.0f} ms; in-process "
          f"reload, which frees the entries it replaces: {j['reload_ratio']:.2f}x)",
          j["start_ratio"], 1.3, False)
    if os.path.exists(os.path.join(RESULTS, "journal_peer.json")):
        p = load("journal_peer.json")
        for what, key, theirs in (
            ("`cached` 4.x `RedbCache`, durable: 10 `cache_set`s", "durable_over_ours",
             f"{p['redb_durable_10_sets_ms']:.2f} ms, {p['redb_durable_10_sets_bytes']:,} B"),
            ("`cached` 4.x `RedbCache`: 10 `cache_set`s + `flush()`", "flush_over_ours",
             f"{p['redb_10_sets_flush_ms']:.2f} ms, {p['redb_10_sets_flush_bytes']:,} B"),
        ):
            rows.append(("9. save of changes", f"{what} / our 10 inserts + `save()` "
                         f"({theirs} against {p['save_10_ms']:.2f} ms, {p['save_10_bytes']:,} B; "
                         "in turn) (not a goal, for comparison)", ratio_text(p[key]), "", ""))
        rows.append(("9. save of changes", "`cached` 4.x `RedbCache` warm hit / ours, 1M entries "
                     f"({p['redb_hit_ns']:.0f} / {p['hit_ns']:.0f} ns) (not a goal)",
                     ratio_text(p["redb_hit_over_ours"]), "", ""))
        rows.append(("9. save of changes", "restart and 1,000 hits: our load / `RedbCache`'s open "
                     f"({p['restart_ms']:.0f} / {p['redb_restart_ms']:.1f} ms) (not a goal)",
                     ratio_text(p["restart_over_redb"]), "", ""))
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


def redis_rows(ratio):
    """Workload 9 (issue 15): caches on Redis against `cached`'s RedisCache, in turn."""
    rows = []
    path = os.path.join(RESULTS, "redis_ratio.json")
    if not os.path.exists(path):
        return rows
    turns = load("redis_ratio.json")
    if "skipped" in turns:
        rows.append(("9. Redis", turns["skipped"], "", "", ""))
        return rows
    how = f"(in turn, {turns['rounds']} rounds)"
    ratio("9. Redis hit", f"cacheman, no local copy / `cached` `RedisCache` {how}",
          turns["hit_ratio"], 1.0, False)
    local = turns["hit_local_ns"]
    rows.append(("9. Redis hit, local copy", f"cacheman {how}", fmt_time(local), "≤ 1 µs",
                 verdict(local, 1000, False)))
    rows.append(("9. Redis miss + store", f"cacheman / `cached` get + set {how} (not a goal)",
                 ratio_text(turns["miss_ratio"]), "", ""))
    runs, theirs = turns["herd_body_runs"], turns["cached_herd_body_runs"]
    rows.append((f"9. Redis herd, {turns['herd_processes']} processes",
                 f"body runs on {turns['herd_keys']:,} keys: cacheman (`cached`: {theirs:,})",
                 f"{runs:,}", f"= {turns['herd_keys']:,}",
                 "met" if runs == turns["herd_keys"] else "**missed**"))
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
    runs = py.get("statistic", "best of 3")
    rows.append(("python_cacheman", f"save_1m (pickle, no fsync; {runs})", fmt_time(py["save_s"] * 1e9)))
    rows.append(("python_cacheman", f"load_1m (pickle; {runs})", fmt_time(py["load_s"] * 1e9)))
    rows.append(("python_cacheman", f"hit (dict lookup through the cache; {runs})", fmt_time(py["hit_ns"])))
    turns = load("save_ratio.json")
    for key, what in (("cacheman_save_ms", "cacheman save"), ("std_write_fsync_ms", "durable write of as many bytes"),
                      ("std_fsync_ms", "its fsync alone"), ("cacheman_load_ms", "cacheman reload"),
                      ("cacheman_open_ms", "cacheman open into an empty cache"),
                      ("cacheman_py_save_ms", "CacheMan save"), ("cacheman_py_load_ms", "CacheMan reload")):
        if key in turns:
            rows.append(("save_ratio (in turn, median)", what, fmt_time(turns[key] * 1e6)))
    return rows


def instruction_rows():
    """Instructions per hit under callgrind (benches/hit_instructions.sh), if it ran: counts, not
    times, so they do not depend on the machine's load."""
    if not os.path.exists(os.path.join(RESULTS, "hit_instructions.json")):
        return []
    counts = load("hit_instructions.json")
    kinds = (
        ("hit_loop", "`hit_loop`: the one `#[cached(persistent = false)] fn(u64)` of its program"),
        ("fn", "`#[cached(persistent = false)] fn(u64)`"),
        ("fn_capacity", "the same, `capacity = 10_000`"),
        ("fn_ttl", "the same, `ttl_secs = 3600`"),
        ("cached_size", "`cached`'s `#[cached(size = 10_000)]`"),
        ("get_plain", "`Cache::get`, memory cache"),
        ("get_bounded", "`Cache::get`, `capacity(10_000)`"),
        ("get_expiring", "`Cache::get`, `ttl(1 h)` on the system clock"),
    )
    return [(what, f"{counts[kind]:.1f}") for kind, what in kinds if kind in counts]


def svg_chart():
    """Grouped horizontal bars: ns per hit, one and two threads, for every contender."""
    names = ["cacheman", "cacheman_persistent", "cached", "moka", "quick_cache", "mutex_hashmap", "hashmap_no_lock"]
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


def busy_machine_note(machine):
    """A warning when the machine was busier at the start than it has cores, else nothing."""
    load = re.search(r"^load:\s+([0-9.]+)", machine, re.M)
    cores = re.search(r"^cpu:.*, (\d+) cores", machine, re.M)
    if not load or not cores or float(load.group(1)) <= int(cores.group(1)):
        return []
    return [
        f"**The load average at the start ({load.group(1)}) was above the machine's "
        f"{cores.group(1)} cores**: other work ran throughout this run, and the figures that "
        "need both cores at once (workloads 2, 3 and 5, and the save's writer thread) mostly "
        "measure that contention. Read them against a run on a quiet machine.",
        "",
    ]


def main():
    machine = open(os.path.join(RESULTS, "machine.txt")).read().strip()
    lines = [BEGIN, "", "### Machine and versions", "", "```", machine, "```", ""]
    lines += busy_machine_note(machine)
    lines += ["### Goals (ratios within this run)", "", "| workload | figure | result | goal | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {w} | {what} | {fig} | {goal} | {v} |" for w, what, fig, goal, v in goal_rows()]
    lines += ["", "### Every figure (time per element: lookup, miss, save, load or program run)", ""]
    lines += ["| benchmark | contender | time |", "|---|---|---|"]
    lines += [f"| {g} | {b} | {t} |" for g, b, t in figure_rows()]
    counted = instruction_rows()
    if counted:
        lines += ["", "### Instructions per hit (callgrind, `benches/hit_instructions.sh`; 1,024 warm `u64` keys)", ""]
        lines += ["| hit | instructions |", "|---|---|"]
        lines += [f"| {what} | {n} |" for what, n in counted]
    lines += ["", "![Hit latency of cacheman and its peers](docs/benchmarks.svg)", "", END]
    block = "\n".join(lines)

    path = os.path.join(ROOT, "BENCHMARKS.md")
    text = open(path).read()
    if BEGIN not in text or END not in text:
        sys.exit(f"{path} has no {BEGIN} ... {END} section to fill")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    known = figures()

    def fill(match):
        name = match.group(1)
        if name not in known:
            sys.exit(f"{path} quotes <!--f:{name}-->, a figure report.py does not compute")
        return f"<!--f:{name}-->{known[name]}<!--/f-->"

    with open(path, "w") as f:
        f.write(FIGURE.sub(fill, head) + block + FIGURE.sub(fill, tail))
    with open(os.path.join(ROOT, "docs", "benchmarks.svg"), "w") as f:
        f.write(svg_chart())
    print(f"wrote {path} and docs/benchmarks.svg")


if __name__ == "__main__":
    main()
