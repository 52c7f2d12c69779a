# SPDX-License-Identifier: MIT
"""``solo-div report compare A.jsonl B.jsonl``: two results files side by side, cell by cell.

A cell is one pretraining run under one probe. Lines name their cell by ``table`` and ``cell``
(what the sweep runner records); when a line of either file has no cell id (lines written before
those fields existed, or a probe run by hand) both files are matched by the run's attributes
(method, backbone, C, N, fraction) instead, and the output says so. Per cell the accuracy is the
mean over seeds of each seed's newest line, and the delta is B minus A. Cells found in only one
file are listed after the common ones.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solo_diversity.errors import UserError
from solo_diversity.experiments.results import Result, per_seed, read_results

RUN_ATTRIBUTES = ("method", "backbone", "pretrain_dataset", "C", "N", "fraction")
KNN_ATTRIBUTES = ("feature_type", "distance_function", "k", "temperature")


@dataclass(frozen=True)
class CellMean:
    """A cell's top-1 averaged over its seeds, and how many seeds it has."""

    acc1: float
    seeds: int


def has_cell_ids(results: list[Result]) -> bool:
    """Whether every line names its table and cell (the sweep runner's lines do)."""
    return all(r.record.get("table") and r.record.get("cell") for r in results)


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def cell_key(record: dict[str, Any], by_id: bool) -> str:
    """The cell a line belongs to: its run (cell id or attributes), then its probe."""
    if by_id:
        run = f"{record['table']}/{record['cell']}"
    else:
        run = " ".join(
            f"{k}={_value(record[k])}" for k in RUN_ATTRIBUTES if record.get(k) is not None
        )
    labels = float(record.get("label_fraction") or 1.0)
    probe = f"{record.get('dataset')}@{labels:g} {record.get('probe_mode') or 'protocol'}"
    if "distance_function" in record:  # a kNN line: one cell per kNN setting
        probe = "knn " + " ".join(f"{k}={_value(record.get(k))}" for k in KNN_ATTRIBUTES)
        probe = f"{record.get('dataset')} {probe}"
    return f"{run} | {probe}"


def cell_means(results: list[Result], by_id: bool) -> dict[str, CellMean]:
    """Each cell's mean top-1 over seeds (the newest line of each seed counts)."""
    grouped: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        grouped[cell_key(result.record, by_id)].append(result)
    out = {}
    for key, lines in grouped.items():
        latest = per_seed(lines)
        out[key] = CellMean(sum(r.acc1 for r in latest.values()) / len(latest), len(latest))
    return out


def _cell(mean: CellMean) -> str:
    return f"{mean.acc1:6.2f} (n={mean.seeds})"


def _read(path: Path) -> list[Result]:
    """The result lines of ``path``; a binary file is a user error too, not a traceback."""
    try:
        return read_results(path)
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text file of JSON lines; give a results .jsonl") from None


def compare_lines(a: Path, b: Path) -> list[str]:
    """The comparison of two results files, as the lines ``report compare`` prints.

    Raises:
        UserError: a file is missing or not JSONL of result lines.
    """
    first, second = _read(a), _read(b)
    by_id = has_cell_ids(first) and has_cell_ids(second)
    means_a, means_b = cell_means(first, by_id), cell_means(second, by_id)
    both = sorted(set(means_a) & set(means_b))
    how = (
        "table/cell id"
        if by_id
        else ("run attributes (" + ", ".join(RUN_ATTRIBUTES) + "): some lines carry no cell id")
    )
    lines = [
        f"A: {a} ({len(first)} lines, {len(means_a)} cells)",
        f"B: {b} ({len(second)} lines, {len(means_b)} cells)",
        f"cells matched by {how}; top-1 is the mean over seeds",
        f"in both ({len(both)}):",
    ]
    width = max((len(k) for k in both), default=4)
    if both:
        lines.append(f"  {'cell':<{width}}  {'A':>13}  {'B':>13}  {'B-A':>7}")
    for key in both:
        delta = means_b[key].acc1 - means_a[key].acc1
        lines.append(
            f"  {key:<{width}}  {_cell(means_a[key])}  {_cell(means_b[key])}  {delta:+7.2f}"
        )
    for name, mine, other in (("A", means_a, means_b), ("B", means_b, means_a)):
        alone = sorted(set(mine) - set(other))
        lines.append(f"only in {name} ({len(alone)}):")
        lines += [f"  {key}  {_cell(mine[key])}" for key in alone]
    return lines


def _compare(args: argparse.Namespace) -> int:
    files = [Path(p) for p in args.compare_with]
    if len(files) != 2:
        raise UserError(
            f"report compare takes two results files, got {len(files)}: "
            "solo-div report compare A.jsonl B.jsonl"
        )
    print("\n".join(compare_lines(*files)))
    return 0


def attach(report: argparse.ArgumentParser) -> None:
    """Make ``solo-div report compare A B`` run the comparison on the ``report`` parser.

    ``report`` takes one results file as its positional argument; ``compare`` in its place, with
    two files after it, selects the comparison, so ``solo-div report RESULTS.jsonl`` is unchanged.
    """
    report.add_argument("compare_with", nargs="*", help=argparse.SUPPRESS)
    report.epilog = "solo-div report compare A.jsonl B.jsonl: per cell, A, B and B-A"
    plain: Callable[[argparse.Namespace], int] = report.get_default("func")

    def dispatch(args: argparse.Namespace) -> int:
        if args.results == "compare":
            return _compare(args)
        if args.compare_with:
            raise UserError(
                f"report takes one results file; {args.compare_with[0]} is extra "
                "(compare two with: solo-div report compare A.jsonl B.jsonl)"
            )
        return plain(args)

    report.set_defaults(func=dispatch)
