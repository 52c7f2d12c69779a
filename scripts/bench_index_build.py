# SPDX-License-Identifier: MIT
"""Benchmark the streaming index build on N synthetic ImageNet-style paths.

Writes a text list of N paths like ``train/n01440764/n01440764_10026.JPEG`` (~40 chars), then,
each in a fresh process so peak RSS is its own, (1) builds the index from the list and (2) opens
the index and selects a 10% subset. Prints wall seconds and peak RSS (``ru_maxrss``) of each phase.

    python scripts/bench_index_build.py --n 10000000 --workdir /tmp/bench_index
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class AnonWatcher:
    """Polls /proc/self/status for the peak anonymous RSS (ru_maxrss also counts file pages that
    the build memory-maps from its spool; those stay reclaimable page cache)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                for line in Path("/proc/self/status").read_text().splitlines():
                    if line.startswith("RssAnon:"):
                        self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
            except OSError:
                return
            time.sleep(interval)

    def __enter__(self) -> AnonWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def write_list(path: Path, n: int, chunk: int = 100_000) -> None:
    with open(path, "w") as f:
        for lo in range(0, n, chunk):
            rows = []
            for i in range(lo, min(lo + chunk, n)):
                synset = 1440764 + (i * 7919) % 1000 * 1013
                rows.append(f"train/n{synset:08d}/n{synset:08d}_{i}.JPEG\n")
            f.write("".join(rows))


def phase_build(list_path: Path, out: Path, seed: int) -> dict:
    from solo_diversity.index import build_index

    base = peak_rss_mb()
    with AnonWatcher() as anon:
        t0 = time.perf_counter()
        build_index("list", out, list_path=list_path, seed=seed, dataset="synthetic")
        elapsed = time.perf_counter() - t0
    return {
        "build_s": elapsed,
        "peak_rss_mb": peak_rss_mb(),
        "peak_anon_rss_mb": anon.peak_mb,
        "rss_after_imports_mb": base,
        "file_mb": out.stat().st_size / 1e6,
    }


def phase_subset(out: Path) -> dict:
    from solo_diversity.index import open_index, select_subset

    t0 = time.perf_counter()
    subset = select_subset(open_index(out), 0.1)
    t1 = time.perf_counter()
    name = subset.index.entry_name(subset.positions[-1])
    return {
        "open_subset_s": t1 - t0,
        "subset_n": len(subset),
        "last_entry": name,
        "subset_peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_index"))
    parser.add_argument("--phase", choices=["build", "subset"], help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the list and index files")
    args = parser.parse_args()
    list_path = args.workdir / f"paths_{args.n}.txt"
    out = args.workdir / f"index_{args.n}.h5"
    if args.phase == "build":
        print(json.dumps(phase_build(list_path, out, args.seed)))
        return
    if args.phase == "subset":
        print(json.dumps(phase_subset(out)))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not list_path.is_file():
        t0 = time.perf_counter()
        write_list(list_path, args.n)
        size_mb = list_path.stat().st_size / 1e6
        print(f"wrote {list_path} ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f}s")
    result = {"n": args.n}
    for phase in ("build", "subset"):
        cmd = [
            sys.executable,
            __file__,
            "--phase",
            phase,
            "--n",
            str(args.n),
            "--seed",
            str(args.seed),
            "--workdir",
            str(args.workdir),
        ]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        result.update(json.loads(done.stdout.strip().splitlines()[-1]))
    print(json.dumps(result, indent=2))
    if not args.keep:
        list_path.unlink()
        out.unlink()


if __name__ == "__main__":
    main()
