# SPDX-License-Identifier: MIT
"""Where a cell list's tasks run: here one after another, or as a hydra multirun on a cluster.

``local`` runs each task's commands in turn, re-checking the task just before it starts (two cells
of a list may share a run, which the first one then finishes). ``slurm`` and ``submitit_local``
hand the tasks to hydra's submitit launcher (:mod:`solo_diversity.experiments.sweep`): ``slurm``
submits a job array, ``submitit_local`` runs the same jobs as local processes (how the tests run a
sweep without a cluster). Only tasks with something left are submitted.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from solo_diversity.errors import UserError
from solo_diversity.experiments.cells import default_configs_dir
from solo_diversity.experiments.progress import progress_line
from solo_diversity.experiments.runner import (
    RunSettings,
    Task,
    hydra_value,
    plan_tasks,
    pretrain_command,
    probe_command,
    run_task,
    shell_line,
)

LAUNCHERS = ("local", "slurm", "submitit_local")


@dataclass(frozen=True)
class ClusterOptions:
    """The SLURM job's resources (hydra's ``hydra.launcher.*`` of the submitit launcher)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    timeout_min: int = 72 * 60
    max_requeues: int = 20
    cpus_per_task: int | None = None
    mem_gb: int | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)  # more hydra.launcher.KEY=VALUE


def _hydra_list(items: Sequence[str]) -> str:
    return "[" + ",".join(hydra_value(i) for i in items) + "]"


def sweep_command(
    table: str,
    tasks: Sequence[Task],
    settings: RunSettings,
    launcher: str,
    cluster: ClusterOptions,
) -> list[str]:
    """The hydra multirun that runs ``tasks`` through the submitit launcher ``launcher``."""
    configs = (settings.configs or default_configs_dir()).resolve()
    entry_dir = (settings.entry_dir or configs.parent).resolve()
    hydra_launcher = "submitit_slurm" if launcher == "slurm" else "submitit_local"
    cmd = [
        settings.python,
        "-m",
        "solo_diversity.experiments.sweep",
        "--multirun",
        f"hydra/launcher={hydra_launcher}",
        f"hydra.sweep.dir={hydra_value(str(settings.runs.resolve() / '.sweeps' / table))}",
        "hydra.sweep.subdir=${hydra.job.num}",
        f"table={table}",
        "task=" + ",".join(hydra_value(f"{t.cell.spec.id}:{t.seed}") for t in tasks),
        f"results={hydra_value(str(settings.results.resolve()))}",
        f"runs={hydra_value(str(settings.runs.resolve()))}",
        f"workdir={hydra_value(str(settings.workdir.resolve()))}",
        f"configs={hydra_value(str(configs))}",
        f"entry_dir={hydra_value(str(entry_dir))}",
        f"python={hydra_value(settings.python)}",
        f"devices={settings.devices}",
        f"nodes={settings.nodes}",
        f"pretrain_set={_hydra_list(settings.pretrain_set)}",
        f"probe_set={_hydra_list(settings.probe_set)}",
        f"hydra.launcher.timeout_min={cluster.timeout_min}",
    ]
    if launcher == "slurm":
        cmd += [
            f"hydra.launcher.nodes={settings.nodes}",
            f"hydra.launcher.gpus_per_node={settings.devices}",
            f"hydra.launcher.tasks_per_node={settings.devices}",  # one process per GPU (DDP)
            f"hydra.launcher.max_num_timeout={cluster.max_requeues}",
        ]
        for key in ("partition", "account", "qos", "cpus_per_task", "mem_gb"):
            value = getattr(cluster, key)
            if value is not None:
                cmd.append(f"hydra.launcher.{key}={value}")
    cmd += [f"hydra.launcher.{kv}" for kv in cluster.extra]
    return cmd


def _first_step(task: Task) -> str:
    kind = task.cell.spec.untrained
    return f"write the {kind} baseline (no training)" if kind else task.pretrain


def describe(tasks: Sequence[Task], settings: RunSettings, say: Callable[[str], None]) -> None:
    """Print each task: state, N, E, D, steps, warmup steps, recipe, and the commands it runs.

    A task whose data is missing (an unset placeholder, a set not built yet) says what it needs
    instead of its commands, which could not run.
    """
    for task in tasks:
        plan = task.cell.plan
        what = (
            "nothing (done)"
            if task.idle
            else (
                f"skipped, it needs {', '.join(task.cell.missing)}"
                if task.cell.missing
                else f"{_first_step(task)}, then {len(task.probes)} probe(s)"
                if task.needs_pretraining
                else f"{len(task.probes)} probe(s)"
            )
        )
        say(
            f"# {task.name}: {task.cell.spec.config} N={plan.N:,} E={plan.epochs:,.6g} "
            f"D={plan.diversity:.6g} steps={plan.steps:,} global_batch={plan.global_batch} "
            f"warmup_steps={task.cell.warmup_steps:,} recipe={task.cell.recipe.name} "
            f"epoch_keys={plan.epoch_keys} run={task.cell.run_key} -> {what}"
        )
        if task.idle or task.cell.missing:
            continue
        if task.needs_pretraining:
            say(shell_line(pretrain_command(task, settings)))
        ckpt = task.folder / "<finished checkpoint>"
        for probe in task.probes:
            say(shell_line(probe_command(task, probe, ckpt, settings)))


def run_local(
    tasks: Sequence[Task], settings: RunSettings, say: Callable[[str], None]
) -> list[str]:
    """Run the tasks one after another, each opened by its ``[k/n]`` line; returns the failures."""
    failures: list[str] = []
    started = time.monotonic()
    for k, task in enumerate(tasks, start=1):
        say(progress_line(k, len(tasks), time.monotonic() - started, task.name))
        fresh = plan_tasks(task.cell.spec.table, settings, [task.seed], [task.cell.spec.id])[0]
        if fresh.idle:
            continue
        failures += run_task(fresh, settings, say=say)
    return failures


def run_sweep(
    table: str,
    tasks: Sequence[Task],
    settings: RunSettings,
    launcher: str,
    cluster: ClusterOptions,
    say: Callable[[str], None],
) -> list[str]:
    """Submit the tasks through hydra's submitit launcher and wait for them."""
    try:
        import hydra_plugins.hydra_submitit_launcher  # noqa: F401
    except ImportError:
        raise UserError(
            f"--launcher {launcher} needs hydra's submitit launcher: "
            "pip install 'solo-diversity[slurm]'"
        ) from None
    cmd = sweep_command(table, tasks, settings, launcher, cluster)
    say(
        f"submitting {len(tasks)} job(s) through hydra/launcher="
        f"{'submitit_slurm' if launcher == 'slurm' else 'submitit_local'}"
    )
    code = subprocess.run(cmd, cwd=settings.workdir, check=False).returncode
    if code != 0:
        logs = Path(settings.runs) / ".sweeps" / table
        return [f"{table}: the sweep exited {code}; each job's log is under {logs}/.submitit/"]
    return []
