# SPDX-License-Identifier: MIT
"""``solo-div report RESULTS.jsonl [--out DIR]``: our numbers beside the paper's, tables, figures.

Writes, under ``--out``: ``report.md`` (a summary, then every table with results), ``report.tex``,
one ``<table>.md`` / ``<table>.tex`` per table with its ``<table>.csv`` / ``<table>.json``
aggregate (mean, std, n and the paper's value per cell), and per table with results the figure
``<table>_acc_vs_D`` (Figure 4 is ``fig4_yfcc_subsets_acc_vs_D``; Figure 3 ``fig3_imagenet100``)
as ``.pdf``, ``.svg`` and ``.png`` (``--dpi``, ``--ylim``). It says which cells
are missing, which lines matched no cell or several, and which probe mode produced each number.
Table 3 (a distance list) reads ``--distances DIR`` (``<cell id>.json`` per distance) instead of
the probe lines and is printed beside the paper's 36 numbers.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from solo_diversity.console import console
from solo_diversity.errors import UserError
from solo_diversity.experiments.cells import list_names, load_experiment
from solo_diversity.experiments.results import read_results
from solo_diversity.report import compare

if TYPE_CHECKING:
    from solo_diversity.report.assign import Assignment
    from solo_diversity.report.match import Pairing

log = logging.getLogger(__name__)

# A copy of :data:`solo_diversity.report.figures.DEFAULT_DPI` (a test keeps them equal): the
# figures load matplotlib and the pairing loads hydra and torch, which ``--help`` does not need.
DEFAULT_DPI = 200


def _has_results(pairing: Pairing, assignment: Assignment) -> bool:
    return any(assignment.by_slot.get(s.label) for s in pairing.slots)


def write_report(
    results_path: Path,
    out: Path,
    tables: list[str] | None = None,
    configs: Path | None = None,
    draw: bool = True,
    distances: Path | None = None,
    dpi: int = DEFAULT_DPI,
    ylim: tuple[float, float] | None = None,
    extra: tuple[str, ...] = (),
) -> dict[str, list[Path]]:
    """Render every table (or ``tables``) with results into ``out``.

    Args:
        results_path: the probes' JSONL file.
        out: the folder to write into.
        tables: the cell lists to render even without results (default: those with results).
        configs: the ``yaml_configs`` folder.
        draw: also draw the figures (PDF, SVG and PNG).
        distances: the distance list's results folder (Table 3's ``<cell id>.json``).
        dpi: the PNG figures' resolution.
        ylim: fixed y-limits of the figures (default: fitted to ours and the paper's values).
        extra: the sweep's pretraining overrides (``experiment run --set``).

    Returns:
        The files written, per table (``report`` for the summary files).
    """
    # Imported here, not at the top: they load hydra, torch and matplotlib (see DEFAULT_DPI).
    from solo_diversity.report import figures, render
    from solo_diversity.report.aggregate import write_aggregates, write_distance_aggregates
    from solo_diversity.report.assign import assign
    from solo_diversity.report.distances import (
        distance_latex,
        distance_markdown,
        distance_values,
        pair_distances,
    )
    from solo_diversity.report.match import pair_table

    results = read_results(results_path)
    names = tables or list_names(configs)
    kinds = {n: load_experiment(n, configs).kind for n in names}
    pairings = [pair_table(n, configs, extra) for n in names if kinds[n] != "distance"]
    assignment = assign(results, render.slots_of(pairings))
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    md_parts, tex_parts, summary = [], [], []
    for pairing in pairings:
        name = pairing.experiment.table
        n_done = sum(1 for s in pairing.slots if assignment.by_slot.get(s.label))
        summary.append(f"| {name} | {n_done} | {len(pairing.slots) - n_done} |")
        if not (tables or _has_results(pairing, assignment)):
            continue
        md, tex = render.markdown(pairing, assignment), render.latex(pairing, assignment)
        files = [out / f"{name}.md", out / f"{name}.tex"]
        files[0].write_text(md)
        files[1].write_text(tex)
        md_parts.append(md)
        tex_parts.append(tex)
        files += write_aggregates(pairing, assignment, out / name)
        if draw:
            plot = figures.plot_fig3 if name == "fig3_imagenet100" else figures.plot_acc_vs_d
            stem = out / (name if name == "fig3_imagenet100" else f"{name}_acc_vs_D")
            files += plot(pairing, assignment, stem, dpi=dpi, ylim=ylim)
        written[name] = files
    for name in (n for n in names if kinds[n] == "distance"):
        dist = pair_distances(name, configs)
        values = distance_values(distances, dist)
        left = len(dist.experiment.distances) - len(values)
        summary.append(f"| {name} | {len(values)} | {left} |")
        if not (tables or values):
            continue
        md, tex = distance_markdown(dist, values), distance_latex(dist, values)
        files = [out / f"{name}.md", out / f"{name}.tex"]
        files[0].write_text(md)
        files[1].write_text(tex)
        files += write_distance_aggregates(dist, values, out / name)
        md_parts.append(md)
        tex_parts.append(tex)
        written[name] = files
    used = {r.line: r for rs in assignment.by_slot.values() for r in rs}  # a line fills tables
    modes = Counter(r.probe_mode for r in used.values())
    head = [
        "# Reproduction report",
        "",
        f"Results: `{results_path.name}`, {len(results)} lines; "
        "probe modes: " + (", ".join(f"{m} ({n})" for m, n in sorted(modes.items())) or "none"),
        "",
        "| cell list | cells with results | missing |",
        "|---|---:|---:|",
        *summary,
        "",
    ]
    if assignment.unmatched:
        head.append(
            "Lines matching no cell: " + ", ".join(str(r.line) for r in assignment.unmatched)
        )
    if assignment.knn:
        head.append(f"kNN lines set aside (the tables are linear probes): {len(assignment.knn)}")
    for result, why in assignment.off_plan:
        head.append(f"Line {result.line} is in a run's folder but {why}: filed by its own C")
    for result, labels in assignment.ambiguous:
        head.append(f"Line {result.line} fits several cells ({', '.join(labels)}); give it run_key")
    report_md, report_tex = out / "report.md", out / "report.tex"
    report_md.write_text("\n".join(head).rstrip() + "\n\n" + "\n".join(md_parts))
    report_tex.write_text("\n".join(tex_parts))
    written["report"] = [report_md, report_tex]
    return written


def _ylim(values: list[float] | None) -> tuple[float, float] | None:
    """``--ylim LOW HIGH`` checked: LOW below HIGH."""
    if values is None:
        return None
    low, high = values
    if not low < high:
        raise UserError(f"--ylim {low:g} {high:g}: LOW must be below HIGH, e.g. --ylim 30 70")
    return low, high


def _overrides(items: list[str]) -> tuple[str, ...]:
    """``--set`` values checked: each is KEY=VALUE."""
    for item in items:
        if "=" not in item.lstrip("+"):
            raise UserError(f"--set {item}: give KEY=VALUE, e.g. --set budget.C=2048")
    return tuple(items)


def _report(args: argparse.Namespace) -> int:
    if args.dpi < 10 or args.dpi > 1200:
        raise UserError(f"--dpi {args.dpi}: give a resolution from 10 to 1200, e.g. --dpi 300")
    distances = args.distances or Path(os.environ.get("SOLO_DIV_DISTANCES") or "results/distances")
    written = write_report(
        Path(args.results),
        Path(args.out),
        args.tables,
        args.configs,
        draw=not args.no_figures,
        distances=distances,
        dpi=args.dpi,
        ylim=_ylim(args.ylim),
        extra=_overrides(args.set),
    )
    for name, files in written.items():
        if files and files[0].name == "table3_distances.md":  # printed: no figure shows it
            console.print(files[0].read_text(), markup=False)
        console.print(f"{name}: " + ", ".join(str(f) for f in files))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``solo-div report``."""
    p = subparsers.add_parser("report", help="the paper's tables and figures with our numbers")
    p.add_argument("results", help="the probes' results JSONL (results/linear.jsonl)")
    p.add_argument(
        "--out", default="report", help="folder: tables (Markdown, LaTeX, CSV, JSON), plots"
    )
    p.add_argument(
        "--tables",
        nargs="+",
        default=None,
        help="cell lists to render even without results (default: those with results)",
    )
    p.add_argument("--configs", type=Path, default=None, help="the yaml_configs folder")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--dpi", type=int, default=DEFAULT_DPI, help="the PNG figures' resolution")
    p.add_argument(
        "--ylim",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        default=None,
        help="fixed y-range of the figures in %% (default: at least 10 points around ours and "
        "the paper's)",
    )
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="the pretraining overrides the sweep ran with (experiment run --set), so that its "
        "cells are found",
    )
    p.add_argument(
        "--distances",
        type=Path,
        default=None,
        help="Table 3's results folder, <cell>.json each (env SOLO_DIV_DISTANCES, "
        "default results/distances)",
    )
    p.set_defaults(func=_report)
    compare.attach(p)  # solo-div report compare A.jsonl B.jsonl
