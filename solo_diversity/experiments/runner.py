# SPDX-License-Identifier: MIT
"""Running a cell list: pretrain what has no finished run, then probe what has no result line.

A :class:`Task` is one cell at one seed: its pretraining (skipped when finished, resumed when it has
checkpoints) and the probes whose lines are missing. The commands are the users' own entry points,
``main_pretrain.py`` and ``main_linear.py``, with the cell's overrides, so a cell run by a script is
the same run as one typed by hand. Pretraining writes into ``<runs>/<run_key>/seed<seed>/`` with
auto-resume on, so a crashed or requeued task continues from its last checkpoint, and a rerun of a
finished list does nothing. The launchers (:mod:`solo_diversity.experiments.launch`) decide where
the tasks run. The pretraining's wall time is summed over resumes in the folder's ``wall_time.json``
and, with the cell's table, id and run key, handed to the probes for their result lines.
What is left is read from the results file and the run folders in this one process, which loads
neither torch nor Lightning: the rerun of a finished list answers in about a second.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from solo_diversity.errors import UserError
from solo_diversity.experiments.cells import Probe, default_configs_dir, load_experiment
from solo_diversity.experiments.plan import ResolvedCell, read_yaml, resolve_cell
from solo_diversity.experiments.status import (
    FINISHED,
    pretrain_state,
    probe_done,
    read_optional,
    run_dir,
)

PROBE_CONFIG = "linear_div"
WALL_TIME = "wall_time.json"  # in a task's folder: the pretraining's seconds, summed over resumes


@dataclass(frozen=True)
class RunSettings:
    """Where a sweep reads and writes, and how its commands start.

    Attributes:
        results: the probes' JSONL file (every probe appends its line).
        runs: the folder of pretraining runs, ``<runs>/<run_key>/seed<seed>/``.
        workdir: the folder the commands run in (data paths in the configs are relative to it).
        entry_dir: the folder with ``main_pretrain.py`` and ``main_linear.py``.
        python: the interpreter the commands use.
        devices, nodes: devices per node and nodes of each pretraining.
        pretrain_set: extra pretraining overrides (``key=value``), e.g. data paths.
        probe_set: extra probe overrides, e.g. ``data.num_workers=8``.
        configs: the ``yaml_configs`` folder the cell lists are read from.
        distances: the folder of a distance list's results, ``<distances>/<cell id>.json``.
        distance_set: extra arguments of each ``solo-div distance`` command, e.g. ``--device cuda``.
    """

    results: Path
    runs: Path
    workdir: Path = field(default_factory=Path.cwd)
    entry_dir: Path | None = None
    python: str = sys.executable
    devices: int = 1
    nodes: int = 1
    pretrain_set: tuple[str, ...] = ()
    probe_set: tuple[str, ...] = ()
    configs: Path | None = None
    distances: Path = Path("results/distances")
    distance_set: tuple[str, ...] = ()

    def entry(self, name: str) -> str:
        folder = self.entry_dir or (self.configs or default_configs_dir()).resolve().parent
        path = folder / name
        if not path.is_file():
            raise UserError(f"{path} does not exist; give the checkout with --entry-dir")
        return str(path)


@dataclass(frozen=True)
class Task:
    """One cell at one seed, and what of it is left to run."""

    cell: ResolvedCell
    seed: int
    folder: Path
    pretrain: str  # probe (finished) | resume | pretrain
    probes: tuple[Probe, ...]  # the probes without a result line
    linear: tuple[str, ...] = ()  # the list's main_linear.py overrides

    @property
    def name(self) -> str:
        return f"{self.cell.spec.table}/{self.cell.spec.id}/seed{self.seed}"

    @property
    def needs_pretraining(self) -> bool:
        return self.pretrain != "probe"

    @property
    def idle(self) -> bool:
        """Nothing left: pretrained and every probe has its line."""
        return not self.probes


def plan_tasks(
    table: str, settings: RunSettings, seeds: Sequence[int], only: Sequence[str] = ()
) -> list[Task]:
    """Every (cell, seed) of ``table`` (or of the cells ``only``) with what it still needs.

    A cell whose probes all have lines needs nothing, even if its checkpoints were deleted. The
    sweep's extra overrides (``settings.pretrain_set``) are part of each cell's plan and run key:
    what is announced is what trains, and a run under another budget gets its own folder.
    """
    experiment = load_experiment(table, settings.configs)
    specs = [experiment.cell(c) for c in only] if only else list(experiment.cells)
    lines = read_optional(settings.results)
    tasks = []
    for spec in specs:
        cell = resolve_cell(
            spec,
            settings.configs,
            devices=settings.devices,
            nodes=settings.nodes,
            extra=settings.pretrain_set,
        )
        for seed in seeds:
            folder = run_dir(settings.runs, cell.run_key, seed)
            missing = tuple(p for p in spec.probes if not probe_done(lines, cell, p, seed))
            state = pretrain_state(folder) if missing else "probe"
            tasks.append(Task(cell, seed, folder, state, missing, tuple(experiment.linear_args())))
    return tasks


def pretrain_command(task: Task, settings: RunSettings) -> list[str]:
    """``main_pretrain.py`` for the task: the cell's config and overrides, its seed and folder."""
    spec = task.cell.spec
    where = [] if "devices" in spec.overrides else [f"devices={settings.devices}"]
    if settings.nodes != 1 and "num_nodes" not in spec.overrides:
        where.append(f"++num_nodes={settings.nodes}")
    return [
        settings.python,
        settings.entry("main_pretrain.py"),
        "--config-name",
        spec.config,
        *spec.override_args(),
        *where,
        f"++seed={task.seed}",
        f"checkpoint.dir={hydra_value(task.folder.resolve())}",
        "checkpoint.enabled=True",
        "auto_resume.enabled=True",
        *settings.pretrain_set,
    ]


def finished_checkpoint(folder: Path) -> Path:
    """The last checkpoint of the finished run in ``folder`` (the one beside ``ledger.json``, or
    ``baseline.json`` for an untrained baseline).
    """
    found = [p for name in FINISHED for p in folder.rglob(name)]
    ledgers = sorted(found, key=lambda p: p.stat().st_mtime_ns)
    if not ledgers:
        raise UserError(f"{folder} has no finished run (no ledger.json) to probe")
    ckpts = sorted(ledgers[-1].parent.glob("*.ckpt"), key=lambda p: p.stat().st_mtime_ns)
    if not ckpts:
        raise UserError(f"{ledgers[-1].parent} is finished but holds no checkpoint to probe")
    return ckpts[-1]


def probe_command(task: Task, probe: Probe, ckpt: Path, settings: RunSettings) -> list[str]:
    """``main_linear.py`` for one probe of the task, appending its line to the results file.

    The probe trains at the probe recipe's LR (and weight decay) for the method and the recipe's
    scale (:func:`solo_diversity.evaluation.recipes.probe_recipe`), unless the list sets them.
    """
    data = _probe_data(task, probe, ckpt, settings)
    listed = {arg.partition("=")[0] for arg in task.linear}  # the list's own keys win
    recipe = [a for a in task.cell.probe_args() if a.partition("=")[0] not in listed]
    return [
        settings.python,
        settings.entry("main_linear.py"),
        "--config-name",
        PROBE_CONFIG,
        f"pretrained_feature_extractor={hydra_value(ckpt.resolve())}",
        f"results={hydra_value(settings.results.resolve())}",
        *recipe,
        *task.linear,
        *probe.overrides(task.cell.dataset),
        *data,
        *settings.probe_set,
    ]


def _probe_data(task: Task, probe: Probe, ckpt: Path, settings: RunSettings) -> list[str]:
    """The probe set's paths, which a checkpoint of another set (or without validation) lacks.

    A probe on another set than the pretraining's, or after pretraining on a built set (its own
    ``data.train_path``: Figure 3's B and B u A), reads the probe set's data group
    (``yaml_configs/data/<set>.yaml``): the probe trains on that set's labelled images, not on the
    pretraining images. A probe on the same set reads the run's own paths, and its group's
    ``val_path`` when the run had validation off.
    """
    group = (settings.configs or default_configs_dir()) / "data" / f"{probe.dataset}.yaml"
    data = (read_yaml(group).get("data") or {}) if group.is_file() else {}
    built = "data.train_path" in task.cell.spec.overrides
    if probe.dataset != task.cell.dataset or built:
        if not data.get("train_path") or not data.get("val_path"):
            return []  # main_linear.py says which paths to set
        own = [f"data.{k}={data[k]}" for k in ("train_path", "val_path", "format") if data.get(k)]
        return own
    args = ckpt.parent / "args.json"
    if not args.is_file():  # a dry run: the run does not exist yet
        return []
    run_data = json.loads(args.read_text()).get("data", {})
    if not run_data.get("val_path") and data.get("val_path"):
        return [f"data.val_path={data['val_path']}"]
    return []


_PLAIN = re.compile(r"^[\w\-+./@%~]+$")


def hydra_value(value: str | Path) -> str:
    """A string as a hydra override value, quoted only when it needs it.

    Checkpoint names hold ``=``, cell ids ``:``, list items both; inside quotes hydra wants a
    backslash only before a quote.
    """
    text = str(value)
    return text if _PLAIN.match(text) else "'" + text.replace("'", "\\'") + "'"


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _child_signals() -> None:
    """In the child: Ctrl-C as usual (the parent ignores it), and SIGUSR2 ignored.

    SIGUSR2 is submitit's time-out signal, which is for its requeue.
    Without this the pretraining would die of it (its default action); it saves instead on the
    SIGTERM that SLURM sends at the time limit, and the requeued job resumes from that checkpoint.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def run_command(cmd: list[str], settings: RunSettings, env: Mapping[str, str] | None = None) -> int:
    """Run one command in the workdir; Ctrl-C reaches the child, which saves and exits 130.

    The parent ignores SIGINT while the child runs, so the child's exit code tells the sweep
    whether it was interrupted (128 + signal) and the sweep can stop with one line.
    """
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=settings.workdir,
            env=dict(env or _child_env()),
            preexec_fn=_child_signals,
        )
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # pragma: no cover - SIGINT is ignored while waiting
                continue
    finally:
        signal.signal(signal.SIGINT, previous)


def add_pretrain_seconds(folder: Path, seconds: float) -> float:
    """Add one pretraining command's wall time to the task folder's total; returns the total."""
    total = round((pretrain_seconds(folder) or 0.0) + seconds, 2)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WALL_TIME).write_text(json.dumps({"pretrain_seconds": total}) + "\n")
    return total


def pretrain_seconds(folder: Path) -> float | None:
    """The pretraining wall time the sweep measured for this folder (None: not run by a sweep)."""
    try:
        return float(json.loads((folder / WALL_TIME).read_text())["pretrain_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def probe_env(task: Task, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The probes' environment: ``base`` plus the cell they belong to, for their result lines.

    The result line reads these (:mod:`solo_diversity.evaluation.provenance`), so the probe's
    command stays the one a user would type.
    """
    from solo_diversity.evaluation.provenance import SWEEP_ENV  # torch: only once probes run

    env = dict(base or _child_env())
    seconds = pretrain_seconds(task.folder)
    values = {
        "table": task.cell.spec.table,
        "cell": task.cell.spec.id,
        "run_key": task.cell.run_key,
        "pretrain_seconds": "" if seconds is None else f"{seconds:.2f}",
    }
    env.update({SWEEP_ENV[key]: value for key, value in values.items()})
    return env


class Interrupted(UserError):
    """A child stopped on a signal; the sweep stops too (rerun it to go on)."""


def run_task(
    task: Task,
    settings: RunSettings,
    *,
    env: Mapping[str, str] | None = None,
    probe: bool = True,
    say=print,
) -> list[str]:
    """Pretrain (or resume) the task's cell if needed, then run its missing probes.

    Args:
        task: what to run.
        settings: the sweep's paths and commands.
        env: the probes' environment (a SLURM task strips the multi-process variables).
        probe: run the probes (only rank 0 of a multi-process SLURM job does).
        say: where progress lines go.

    Returns:
        One line per failed step (empty when everything ran).

    Raises:
        Interrupted: a command stopped on SIGINT, SIGTERM or SLURM's requeue signal.
    """
    failures: list[str] = []
    if task.cell.missing:  # a built set or a path that does not exist yet
        return [f"{task.name}: skipped, it needs {', '.join(task.cell.missing)}"]
    if task.needs_pretraining:
        verb = "resuming" if task.pretrain == "resume" else "pretraining"
        if task.cell.spec.untrained:
            say(f"[{task.name}] writing the {task.cell.spec.untrained} baseline (no training)")
        else:
            say(
                f"[{task.name}] {verb}: N={task.cell.plan.N:,} E={task.cell.plan.epochs:,.4g} "
                f"steps={task.cell.plan.steps:,}"
            )
        started = time.monotonic()
        code = run_command(pretrain_command(task, settings), settings)
        if probe:  # rank 0 of a multi-process job only: each rank times the same run
            add_pretrain_seconds(task.folder, time.monotonic() - started)
        _raise_if_signalled(code, task, "pretraining")
        if code != 0:
            return [f"{task.name}: pretraining failed (exit {code}); rerun to resume it"]
    if not probe:
        return failures
    ckpt = finished_checkpoint(task.folder)
    for p in task.probes:
        say(f"[{task.name}] probing {p.label()} ({p.mode})")
        code = run_command(probe_command(task, p, ckpt, settings), settings, probe_env(task, env))
        _raise_if_signalled(code, task, f"probe {p.label()}")
        if code != 0:
            failures.append(f"{task.name}: probe {p.label()} failed (exit {code})")
    return failures


def _raise_if_signalled(code: int, task: Task, what: str) -> None:
    signals = {
        128 + signal.SIGINT: "SIGINT",
        128 + signal.SIGTERM: "SIGTERM",
        128 + signal.SIGUSR1: "SIGUSR1",
        -signal.SIGINT: "SIGINT",
        -signal.SIGTERM: "SIGTERM",
        -signal.SIGKILL: "SIGKILL",
    }
    if code in signals:
        raise Interrupted(
            f"{task.name}: {what} stopped by {signals[code]}; rerun the same command to go on "
            "(finished cells are skipped, this one resumes)"
        )


def shell_line(cmd: Sequence[str]) -> str:
    """A command as one line a user can paste."""
    return shlex.join(cmd)
