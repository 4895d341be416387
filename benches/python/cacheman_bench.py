#!/usr/bin/env python3
"""Times the Python CacheMan 2.2.0 (from PyPI) on the data the Rust benchmarks use.

Run by benches/run.sh, which compares these figures with cacheman's own in the same run. On its own:

    python3 benches/python/cacheman_bench.py [--venv DIR] [--entries N] [--out FILE]

The script makes (or reuses) a virtualenv with cacheman==2.2.0 and re-runs itself inside it. It
prints one JSON object: seconds for a save and a load of N entries (int -> 100-byte bytes, pickled
by CacheMan's default saver, which does not fsync), the file's size, and nanoseconds per hit of a
dict lookup through a CacheMan cache over 1,024 warm keys.
"""

import argparse
import json
import os
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


def best_of(runs, fn):
    """The fastest of `runs` timings of fn(), in seconds (as criterion's lower estimates are)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(entries, runs):
    from cacheman.cacher import CacheManager

    with tempfile.TemporaryDirectory() as base:
        manager = CacheManager("bench", base)
        cache = manager.register_custom_cache("big", autosync=False)
        for key in range(entries):
            cache[key] = value_of(key)
        save = best_of(runs, lambda: manager.save_cache_contents("big"))
        path = os.path.join(base, "bench", "big.pkl")
        size = os.path.getsize(path)
        load = best_of(runs, lambda: manager.reload_cache("big"))
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

        hit_ns = best_of(runs, lookups) / (rounds * len(keys)) * 1e9
    return {
        "cacheman_py_version": CACHEMAN_VERSION,
        "python": sys.version.split()[0],
        "entries": entries,
        "save_s": save,
        "load_s": load,
        "file_bytes": size,
        "hit_ns": hit_ns,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=os.path.join("target", "cacheman-py-venv"))
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if not args.inside:
        python = ensure_venv(os.path.abspath(args.venv))
        command = [python, os.path.abspath(__file__), "--inside"]
        command += ["--entries", str(args.entries), "--runs", str(args.runs)]
        if args.out:
            command += ["--out", args.out]
        sys.exit(subprocess.run(command).returncode)

    result = measure(args.entries, args.runs)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
