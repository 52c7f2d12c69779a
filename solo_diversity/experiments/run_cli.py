# SPDX-License-Identifier: MIT
"""``solo-div experiment run TABLE``: run what a cell list still needs, and ``experiment about``.

solo-div experiment run table1_cifar100 --dry-run                 # every cell, state and command
solo-div experiment run table1_cifar100 --only simclr-f0.1 --seeds 0 1 2
solo-div experiment run table1_cifar100 --launcher slurm --partition gpu --devices 4 --nodes 2
solo-div experiment about table1_cifar100                         # what it reproduces and costs

Each task of a local run opens with ``[k/n] <table>/<cell>/seed<s> (elapsed m:ss, ETA m:ss)``.

Paths default to the environment: ``SOLO_DIV_RESULTS`` (results/linear.jsonl), ``SOLO_DIV_RUNS``
(runs), ``SOLO_DIV_WORKDIR`` (the folder whose ``datasets/`` the configs' relative paths name),
``SOLO_DIV_DISTANCES`` (results/distances: a distance list's JSON per cell, Table 3).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from solo_diversity.errors import UserError
from solo_diversity.experiments.cells import ExperimentList, load_experiment

if TYPE_CHECKING:
    from solo_diversity.experiments.runner import RunSettings, Task

# A copy of :data:`solo_diversity.experiments.launch.LAUNCHERS` (a test keeps them equal): the
# launcher, runner and cost modules load hydra and torch, which the ``solo-div`` parser does not
# need, so the handlers below import them when they run.
LAUNCHERS = ("local", "slurm", "submitit_local")


def env_path(name: str, default: str) -> Path:
    """The path in the environment variable ``name``, else ``default`` (run and status)."""
    return Path(os.environ.get(name) or default)


def _settings(args: argparse.Namespace) -> RunSettings:
    from solo_diversity.experiments.runner import RunSettings  # torch: only when a run starts

    return RunSettings(
        results=args.results or env_path("SOLO_DIV_RESULTS", "results/linear.jsonl"),
        runs=args.runs or env_path("SOLO_DIV_RUNS", "runs"),
        workdir=(args.workdir or env_path("SOLO_DIV_WORKDIR", ".")).resolve(),
        entry_dir=args.entry_dir,
        python=args.python,
        devices=args.devices,
        nodes=args.nodes,
        pretrain_set=tuple(args.set),
        probe_set=tuple(args.probe_set),
        configs=args.configs,
        distances=args.distances or env_path("SOLO_DIV_DISTANCES", "results/distances"),
        distance_set=tuple(shlex.split(args.distance_args)),
    )


def _say(line: str) -> None:
    print(line, flush=True)


def _run_distances(args: argparse.Namespace, experiment: ExperimentList) -> int:
    if args.launcher != "local":
        raise UserError(f"{args.table} holds distances, which run here: use --launcher local")
    from solo_diversity.experiments.distances import (  # torch: only when a run starts
        describe_distances,
        plan_distances,
        run_distances,
    )

    settings = _settings(args)
    tasks = plan_distances(experiment, settings, args.only or ())
    todo = [t for t in tasks if not t.done]
    _say(
        f"{args.table}: {len(tasks)} distance(s), {len(tasks) - len(todo)} done; "
        f"to run: {len(todo)}; results in {settings.distances}/<cell>.json"
    )
    if args.dry_run:
        describe_distances(tasks, settings, _say)
        return 0
    failures = run_distances(todo, settings, _say)
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


def _summary(table: str, tasks: list[Task], todo: list[Task]) -> str:
    """The first line: how many (cell, seed)s, done, to run, and those skipped for missing data."""
    ready = [t for t in todo if not t.cell.missing]
    line = (
        f"{table}: {len(tasks)} cell x seed, {len(tasks) - len(todo)} done; to run: "
        f"{sum(t.needs_pretraining for t in ready)} pretraining(s), "
        f"{sum(len(t.probes) for t in ready)} probe(s)"
    )
    needs = sorted({need for t in todo for need in t.cell.missing})
    if len(ready) < len(todo):
        line += f"; {len(todo) - len(ready)} skipped, their data is missing: {', '.join(needs)}"
    return line


def _run(args: argparse.Namespace) -> int:
    experiment = load_experiment(args.table, args.configs)
    if experiment.kind == "distance":
        return _run_distances(args, experiment)
    from solo_diversity.experiments.launch import (  # torch: only when a run starts
        ClusterOptions,
        describe,
        run_local,
        run_sweep,
        sweep_command,
    )
    from solo_diversity.experiments.runner import plan_tasks, shell_line

    settings = _settings(args)
    tasks = plan_tasks(args.table, settings, args.seeds, args.only or ())
    todo = [t for t in tasks if not t.idle]
    _say(_summary(args.table, tasks, todo))
    cluster = ClusterOptions(
        partition=args.partition,
        account=args.account,
        qos=args.qos,
        timeout_min=args.timeout_min,
        max_requeues=args.max_requeues,
        cpus_per_task=args.cpus_per_task,
        mem_gb=args.mem_gb,
        extra=tuple(args.launcher_set),
    )
    if args.dry_run:
        describe(tasks, settings, _say)
        if todo and args.launcher != "local":
            _say("# the sweep that submits them:")
            _say(shell_line(sweep_command(args.table, todo, settings, args.launcher, cluster)))
        return 0
    if not todo:
        return 0
    if args.launcher == "local":
        failures = run_local(todo, settings, _say)
    else:
        failures = run_sweep(args.table, todo, settings, args.launcher, cluster, _say)
    for line in failures:
        print(line, file=sys.stderr)
    left = [t for t in plan_tasks(args.table, settings, args.seeds, args.only or ()) if not t.idle]
    _say(
        f"{args.table}: {len(tasks) - len(left)} of {len(tasks)} cell x seed done"
        + (f"; results in {settings.results}" if not left else "; rerun to go on")
    )
    return 1 if failures or left else 0


def _about(args: argparse.Namespace) -> int:
    from solo_diversity.experiments.cost import list_ledger  # hydra, torch: on run

    exp = load_experiment(args.table, args.configs)
    probes = sum(len(c.probes) for c in exp.cells)
    hours = f"about {list_ledger(exp, args.configs).hours:,.0f} GPU-hours"
    what = (
        f"{len(exp.distances)} distances"
        if exp.kind == "distance"
        else f"{len(exp.cells)} pretraining runs, {probes} probes"
    )
    lines = [
        f"{exp.title} (paper table: {exp.paper})",
        f"cells: {what}; full run, one seed: {hours} (solo-div experiment list: the cost model)",
        "data:",
        *(f"  {name}: {what}" for name, what in exp.data.items()),
    ]
    print("\n".join(lines))
    return 0


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``experiment run`` and ``experiment about`` to the ``experiment`` sub-parsers."""
    about = sub.add_parser("about", parents=[common], help="what a list reproduces, needs, costs")
    about.add_argument("table")
    about.set_defaults(func=_about)
    run = sub.add_parser(
        "run", parents=[common], help="pretrain and probe what a cell list still needs"
    )
    run.add_argument("table", help="a cell list, e.g. table1_cifar100 (see: experiment list)")
    run.add_argument("--dry-run", action="store_true", help="print every cell and command only")
    run.add_argument("--only", nargs="+", default=None, metavar="CELL", help="these cell ids")
    run.add_argument("--seeds", type=int, nargs="+", default=[0])
    run.add_argument("--devices", type=int, default=1, help="devices (GPUs) per node")
    run.add_argument("--nodes", type=int, default=1)
    run.add_argument("--launcher", choices=LAUNCHERS, default="local")
    run.add_argument("--results", type=Path, default=None, help="env SOLO_DIV_RESULTS")
    run.add_argument("--runs", type=Path, default=None, help="env SOLO_DIV_RUNS")
    run.add_argument("--workdir", type=Path, default=None, help="env SOLO_DIV_WORKDIR")
    run.add_argument(
        "--distances",
        type=Path,
        default=None,
        help="a distance list's results folder, env SOLO_DIV_DISTANCES",
    )
    run.add_argument(
        "--distance-args",
        default="",
        metavar="ARGS",
        help="extra arguments of each distance command, e.g. '--device cuda'",
    )
    run.add_argument(
        "--entry-dir",
        type=Path,
        default=None,
        help="the folder with main_pretrain.py (default: the checkout's)",
    )
    run.add_argument("--python", default=sys.executable, help="the interpreter of the commands")
    run.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="extra pretraining overrides, e.g. data.train_path=/data/c100.h5",
    )
    run.add_argument(
        "--probe-set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="extra probe overrides, e.g. data.num_workers=8",
    )
    slurm = run.add_argument_group("slurm (hydra's submitit launcher)")
    slurm.add_argument("--partition", default=None)
    slurm.add_argument("--account", default=None)
    slurm.add_argument("--qos", default=None)
    slurm.add_argument("--timeout-min", type=int, default=72 * 60)
    slurm.add_argument(
        "--max-requeues",
        type=int,
        default=20,
        help="time-outs a job may be requeued after (it resumes)",
    )
    slurm.add_argument("--cpus-per-task", type=int, default=None)
    slurm.add_argument("--mem-gb", type=int, default=None)
    slurm.add_argument(
        "--launcher-set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="more hydra.launcher.KEY=VALUE, e.g. constraint=a100",
    )
    run.set_defaults(func=_run)
