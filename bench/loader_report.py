# SPDX-License-Identifier: MIT
"""The loader benchmark's report: ratios to (a), the issue's targets, machine info, tables.

This module owns how :mod:`~bench.loader` results read: rows as JSON-ready dicts with
their ratio to solo-learn's loader (:func:`with_ratios`), the targets a preset is checked against
(:data:`TARGETS`, :func:`target_checks`: reported, never a failure), where the numbers come from
(:func:`machine_info`), the median of repeated rounds (:func:`median_of_rounds`) and one table per
preset (:func:`print_preset`, with ``rich``).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.loader_baseline import BenchPreset
from bench.loader_rows import Row

#: (row key, minimum ratio to (a), applies to small presets): the issue's targets.
TARGETS = (("b_fast", 4.0, False), ("e", 10.0, True))


def median_of_rounds(rounds: Sequence[Sequence[Row]]) -> list[Row]:
    """One row per key: the median images/s of its rounds (``rounds`` keeps every round's rate).

    Args:
        rounds: the rows of each round, the same keys in the same order.

    Returns:
        The rows of the first round with their median rate (None when no round measured it)
        and the first note any round gave.

    """
    out = []
    for k, first in enumerate(rounds[0]):
        rates = [rate for r in rounds if (rate := r[k].images_per_s) is not None]
        note = next((r[k].note for r in rounds if r[k].note), "")
        median = float(np.median(rates)) if rates else None
        out.append(Row(first.key, first.loader, median, note, tuple(rates)))
    return out


def with_ratios(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts with ``ratio_to_a`` (None where either rate is missing)."""
    base = rows[0].images_per_s if rows and rows[0].key == "a" else None
    out = []
    for row in rows:
        rate = row.images_per_s
        ratio = rate / base if rate is not None and base else None
        out.append({**asdict(row), "ratio_to_a": ratio})
    return out


def target_checks(preset: BenchPreset, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets that apply to a preset: the row, the ratio wanted, the one seen."""
    ratios = {r["key"]: r["ratio_to_a"] for r in rows}
    checks = []
    for key, wanted, small in TARGETS:
        if small == preset.small:
            seen = ratios.get(key)
            checks.append(
                {
                    "row": key,
                    "wanted": wanted,
                    "ratio": seen,
                    "holds": seen is not None and seen >= wanted,
                }
            )
    return checks


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured: CPU, load, library versions, GPU."""
    import PIL
    import torchvision

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text().splitlines()
            if ln.startswith("model name")
        ]
        model = names[0] if names else model
    info: dict[str, Any] = {
        "cpu": model,
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pillow": PIL.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import nvidia.dali

        info["dali"] = nvidia.dali.__version__
    except ImportError:
        info["dali"] = None
    return info


def print_preset(name: str, result: dict[str, Any], workers: int, repeats: int = 1) -> None:
    """One preset's table (rich when importable, else aligned text) and its target checks."""
    title = (
        f"{name}: {result['views']} ({result['source']}), batch {result['batch_size']}, "
        f"{workers} workers, {result['num_images']} images"
        + (f", median of {repeats} rounds" if repeats > 1 else "")
    )
    cells = [
        (
            r["loader"],
            "-" if r["images_per_s"] is None else f"{r['images_per_s']:.0f}",
            "-" if r["ratio_to_a"] is None else f"{r['ratio_to_a']:.2f}",
            r["note"],
        )
        for r in result["rows"]
    ]
    checks = [
        f"target {c['row']} >= {c['wanted']:g}x (a): "
        + ("holds" if c["holds"] else "not met")
        + ("" if c["ratio"] is None else f" ({c['ratio']:.2f}x)")
        for c in result["targets"]
    ]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        print(f"{'loader':56s} {'img/s':>8s} {'x (a)':>7s}  note")
        for loader, rate, ratio, note in cells:
            print(f"{loader:56s} {rate:>8s} {ratio:>7s}  {note}")
        print("\n".join(checks) + "\n")
        return
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("loader", "left"),
        ("img/s", "right"),
        ("x (a)", "right"),
        ("note", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for cell in cells:
        table.add_row(*cell)
    console = Console(width=max(120, Console().width))
    console.print(table)
    for line in checks:
        console.print(line)
