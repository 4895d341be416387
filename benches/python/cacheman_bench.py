#!/usr/bin/env python3
"""Times the Python CacheMan 2.2.0 (from PyPI) on the data the Rust benchmarks use.

Run by benches/run.sh, which compares these figures with cacheman's own in the same run. On its own:

    python3 benches/python/cacheman_bench.py [--venv DIR] [--entries N] [--runs R] [--out FILE]

The script makes (or reuses) a virtualenv with cacheman==2.2.0 and re-runs itself inside it. It
prints one JSON object: the median seconds of R saves and R loads of N entries (int -> 100-byte
bytes, pickled by CacheMan's default saver, which does not fsync), the file's size, and the
median nanoseconds per hit of a dict lookup through a CacheMan cache over 1,024 warm keys.

With --serve it fills the cache, saves it once, prints `ready`, then answers each line `save`
or `load` on stdin with the seconds that step took: benches/src/bin/save_ratio.rs drives it, so
CacheMan's save and load are timed in turn with cacheman's, and summed up the same way.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv

CACHEMAN_VERSION = "2.2.0"
VALUE_BYTES = 100


def ensure_venv(path):
    """Returns the venv's python, creating the venv and installing CacheMan if needed."""
    python = os.path.join(path, "bin", "python")
    if not os.path.exists(python):
        venv.create(path, with_pip=True)
    check = subprocess.run(
        [python, "-c", "import cacheman, importlib.metadata as m; print(m.version('cacheman'))"],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0 or check.stdout.strip() != CACHEMAN_VERSION:
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "cacheman==" + CACHEMAN_VERSION],
            check=True,
        )
    return python


def value_of(key):
    # The same bytes the Rust benchmark stores: the key's little-endian bytes, repeated.
    return (key.to_bytes(8, "little") * (VALUE_BYTES // 8 + 1))[:VALUE_BYTES]


def timed(fn):
    """Seconds fn() took."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_of(runs, fn):
    """The median of `runs` timings of fn(), in seconds: the statistic of the Rust programs
    that time cacheman in turn."""
    return statistics.median(timed(fn) for _ in range(runs))


def big_cache(base, entries):
    """A manager in `base` with cache "big" holding `entries` entries, and the cache file's path."""
    from cacheman.cacher import CacheManager

    manager = CacheManager("bench", base)
    cache = manager.register_custom_cache("big", autosync=False)
    for key in range(entries):
        cache[key] = value_of(key)
    return manager, os.path.join(base, "bench", "big.pkl")


def serve(entries):
    """Times a save or a load of the big cache for each line `save` or `load` on stdin."""
    with tempfile.TemporaryDirectory() as base:
        manager, _ = big_cache(base, entries)
        manager.save_cache_contents("big")
        print("ready", flush=True)
        steps = {
            "save": lambda: manager.save_cache_contents("big"),
            "load": lambda: manager.reload_cache("big"),
        }
        for line in sys.stdin:
            step = steps.get(line.strip())
            if step is None:
                break
            print(f"{timed(step):.6f}", flush=True)
        assert len(manager.retrieve_cache("big")) == entries


def measure(entries, runs):
    with tempfile.TemporaryDirectory() as base:
        manager, path = big_cache(base, entries)
        save = median_of(runs, lambda: manager.save_cache_contents("big"))
        size = os.path.getsize(path)
        load = median_of(runs, lambda: manager.reload_cache("big"))
        assert len(manager.retrieve_cache("big")) == entries

        hits = manager.register_custom_cache("hits", persistent=False)
        keys = [(k * 7919) & 1023 for k in range(1024)]
        for key in keys:
            hits[key] = key * 3
        rounds = 2000

        def lookups():
            for _ in range(rounds):
                for key in keys:
                    hits[key]

        hit_ns = median_of(runs, lookups) / (rounds * len(keys)) * 1e9
    return {
        "cacheman_py_version": CACHEMAN_VERSION,
        "python": sys.version.split()[0],
        "entries": entries,
        "statistic": f"median of {runs}",
        "save_s": save,
        "load_s": load,
        "file_bytes": size,
        "hit_ns": hit_ns,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=os.path.join("target", "cacheman-py-venv"))
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--serve", action="store_true", help="time steps asked for on stdin")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if not args.inside:
        python = ensure_venv(os.path.abspath(args.venv))
        command = [python, os.path.abspath(__file__), "--inside"]
        command += ["--entries", str(args.entries), "--runs", str(args.runs)]
        if args.out:
            command += ["--out", args.out]
        if args.serve:
            command += ["--serve"]
        sys.exit(subprocess.run(command).returncode)

    if args.serve:
        serve(args.entries)
        return
    result = measure(args.entries, args.runs)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
