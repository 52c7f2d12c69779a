# SPDX-License-Identifier: MIT
"""``solo-div experiment``: the paper's cell lists, and a list's cells for people and scripts.

solo-div experiment list                                           # and the GPU-hours, once per run
solo-div experiment cells table1_cifar100                          # a table for people
solo-div experiment cells table1_cifar100 --format ids             # one cell id a line
solo-div experiment cells table1_cifar100 --only simclr-f0.1 --format overrides
solo-div experiment cells table1_cifar100 --only simclr-f0.1 --format probes
solo-div experiment cells table1_cifar100 --format tsv   # id config run_key N E D steps overrides
solo-div experiment cells table1_cifar100 --json
solo-div experiment status table1_cifar100 --results results/linear.jsonl --runs runs --seeds 0 1
solo-div experiment run table1_cifar100 --dry-run        # and without --dry-run: run what is left
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from solo_diversity.console import console
from solo_diversity.errors import UserError
from solo_diversity.experiments import run_cli
from solo_diversity.experiments.cells import ExperimentList, list_names, load_experiment

if TYPE_CHECKING:
    from solo_diversity.experiments.plan import ResolvedCell

FORMATS = ("table", "json", "tsv", "ids", "overrides", "probes")


def resolved_cells(args: argparse.Namespace) -> list[ResolvedCell]:
    """The cells ``args`` asks for (all, or ``--only``), resolved at ``--devices`` x ``--nodes``."""
    from solo_diversity.experiments.plan import resolve_cell  # hydra, Lightning: on run

    experiment = load_experiment(args.table, args.configs)
    specs = [experiment.cell(args.only)] if args.only else list(experiment.cells)
    return [resolve_cell(s, args.configs, devices=args.devices, nodes=args.nodes) for s in specs]


def _distance_cells(experiment: ExperimentList, fmt: str) -> int:
    rows = [
        [d.id, d.metric, d.pretrain, d.downstream, str(d.max_samples)] for d in experiment.distances
    ]
    if fmt == "json":
        keys = ("id", "metric", "pretrain", "downstream", "max_samples")
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
    elif fmt == "ids":
        print("\n".join(r[0] for r in rows))
    elif fmt in ("tsv", "table"):
        print("\n".join("\t".join(r) for r in rows))
    else:
        raise UserError(f"{experiment.table} holds distances; use --format table, tsv, ids or json")
    return 0


def _cells(args: argparse.Namespace) -> int:
    fmt = "json" if args.json else args.format
    experiment = load_experiment(args.table, args.configs)
    if experiment.kind == "distance":
        return _distance_cells(experiment, fmt)
    if fmt == "ids":  # the list's own ids: nothing to compose (the scripts ask for them first)
        ids = [args.only] if args.only else [c.id for c in experiment.cells]
        print("\n".join(experiment.cell(i).id for i in ids))
        return 0
    cells = resolved_cells(args)
    if fmt == "json":
        print(json.dumps([c.as_dict() for c in cells], indent=2))
    elif fmt == "overrides":
        for cell in cells:
            print(shlex.join(cell.spec.override_args()))
    elif fmt == "probes":
        for cell in cells:
            for probe in cell.spec.probes:
                print(
                    "\t".join(
                        [
                            cell.spec.id,
                            probe.dataset,
                            f"{probe.label_fraction:g}",
                            probe.mode,
                            shlex.join(probe.overrides(cell.dataset)),
                        ]
                    )
                )
    elif fmt == "tsv":
        for cell in cells:
            plan = cell.plan
            print(
                "\t".join(
                    [
                        cell.spec.id,
                        cell.spec.config,
                        cell.run_key,
                        str(plan.N),
                        f"{plan.epochs:.6g}",
                        f"{plan.diversity:.6g}",
                        str(plan.steps),
                        shlex.join(cell.spec.override_args()),
                    ]
                )
            )
    else:
        console.print(_table(args.table, cells))
    return 0


def _table(name: str, cells: list[ResolvedCell]) -> Table:
    table = Table(title=f"{name}: {len(cells)} cells")
    numbers = ("N", "E", "D", "steps", "warmup")
    for col in ("cell", "recipe", "overrides", *numbers, "probe", "missing"):
        table.add_column(col, justify="right" if col in numbers else "left")
    for cell in cells:
        plan = cell.plan
        table.add_row(
            cell.spec.id,
            cell.recipe.name,
            " ".join(cell.spec.override_args()),
            f"{plan.N:,}",
            f"{plan.epochs:,.2f}",
            f"{plan.diversity:.3g}",
            f"{plan.steps:,}",
            f"{cell.warmup_steps:,}",
            ", ".join(f"{p.label()} ({p.mode})" for p in cell.spec.probes),
            ", ".join(cell.missing),
        )
    return table


def _list(args: argparse.Namespace) -> int:
    from solo_diversity.experiments.cost import all_costs  # hydra, Lightning: on run

    costs = all_costs(args.configs)
    rows = []
    for name in list_names(args.configs):
        exp = load_experiment(name, args.configs)
        probes = sum(len(c.probes) for c in exp.cells)
        cells = len(exp.cells) or len(exp.distances)
        hours = f"{costs.per_list[name]:.0f}"
        rows.append([name, exp.paper, str(cells), str(probes), hours, exp.title])
    total = (
        f"GPU-hours (one seed), each distinct run and probe counted once: {costs.total:,.0f} "
        f"({costs.runs} pretrainings, {costs.probes} probes; the lists' own sums add to "
        f"{costs.naive:,.0f})"
    )
    if args.format == "tsv":  # table, paper, cells, probes, GPU-h, title; then the total
        print("\n".join("\t".join(row) for row in rows))
        print(
            "\t".join(
                [
                    "total",
                    "-",
                    str(costs.runs),
                    str(costs.probes),
                    f"{costs.total:.0f}",
                    "each distinct run and probe counted once",
                ]
            )
        )
        return 0
    table = Table(title="Experiment cell lists (yaml_configs/experiments)")
    for col in ("table", "paper", "cells", "probes", "GPU-h (est.)", "title"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(total)
    return 0


def looked_in(results: Path, runs: Path) -> list[str]:
    """One line per place ``experiment status`` found nothing, so "done: 0" is not a mystery."""
    lines = []
    if not results.is_file():
        lines.append(
            f"no results file at {results.resolve()}, so no probe is done (give "
            "--results or set SOLO_DIV_RESULTS)"
        )
    if not runs.is_dir():
        lines.append(
            f"no runs folder at {runs.resolve()}, so no pretraining has started (give "
            "--runs or set SOLO_DIV_RUNS)"
        )
    return lines


def _status(args: argparse.Namespace) -> int:
    from solo_diversity.experiments.status import STATES, table_status  # hydra, Lightning: on run

    results = args.results or run_cli.env_path("SOLO_DIV_RESULTS", "results/linear.jsonl")
    runs = args.runs or run_cli.env_path("SOLO_DIV_RUNS", "runs")
    states = table_status(args.table, results, runs, args.seeds, args.configs)
    for line in looked_in(results, runs):
        print(f"note: {line}", file=sys.stderr)
    if args.only:
        load_experiment(args.table, args.configs).cell(args.only)  # a clear error for a bad id
        states = [s for s in states if s.cell.spec.id == args.only]
    rows = [[s.cell.spec.id, str(s.seed), s.probe.label(), s.state, s.run_dir] for s in states]
    if args.format == "tsv":
        print("\n".join("\t".join(row) for row in rows))
        return 0
    table = Table(title=f"{args.table}: what is left to run")
    for col in ("cell", "seed", "probe", "state", "run folder"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(", ".join(f"{k}: {sum(s.state == k for s in states)}" for k in STATES))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``solo-div experiment {list,cells}``."""
    p = subparsers.add_parser("experiment", help="the paper's experiment cell lists")
    sub = p.add_subparsers(dest="experiment_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--configs",
        type=Path,
        default=None,
        help="the yaml_configs folder (default: the checkout's)",
    )
    ls = sub.add_parser("list", parents=[common], help="every cell list with its size and cost")
    ls.add_argument("--format", choices=("table", "tsv"), default="table")
    ls.set_defaults(func=_list)
    cells = sub.add_parser(
        "cells", parents=[common], help="a list's cells: config, overrides, N, E, D, steps, probes"
    )
    cells.add_argument("table", help="a cell list, e.g. table1_cifar100 (see: experiment list)")
    cells.add_argument("--only", default=None, help="one cell id, e.g. simclr-f0.1")
    cells.add_argument("--format", choices=FORMATS, default="table")
    cells.add_argument("--json", action="store_true", help="same as --format json")
    cells.add_argument("--devices", type=int, default=1, help="devices per node (sets G)")
    cells.add_argument("--nodes", type=int, default=1)
    cells.set_defaults(func=_cells)
    status = sub.add_parser(
        "status", parents=[common], help="per cell, probe and seed: done, probe, resume or pretrain"
    )
    status.add_argument("table", help="a cell list, e.g. table1_cifar100")
    status.add_argument(
        "--results",
        type=Path,
        default=None,
        help="the probes' JSONL file (env SOLO_DIV_RESULTS, default results/linear.jsonl)",
    )
    status.add_argument(
        "--runs",
        type=Path,
        default=None,
        help="the folder of runs, <runs>/<run_key>/seed<seed>/ (env SOLO_DIV_RUNS, default runs)",
    )
    status.add_argument("--seeds", type=int, nargs="+", default=[0])
    status.add_argument("--only", default=None, help="one cell id")
    status.add_argument("--format", choices=("table", "tsv"), default="table")
    status.set_defaults(func=_status)
    run_cli.add_parsers(sub, common)
