# SPDX-License-Identifier: MIT
"""Running a ``kind: distance`` cell list (Table 3): one distance per cell, its JSON as its result.

A cell is one ``solo-div distance vdna|fid A B`` between a pretraining and a downstream set's
indexes, with the list's sample cap and bins; it writes ``<distances>/<cell id>.json`` (the
command's ``--json``), and a cell whose file holds a value is done, so a rerun computes only what
is missing. Features and VDNAs are cached beside each index, so the 36 cells of Table 3 embed each
set once per extractor. Distances have no seed (each set's sample is the index's shuffled prefix)
and run here, one after another. :func:`read_distances` gives the report our values.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from solo_diversity.errors import UserError
from solo_diversity.experiments.cells import DistanceSpec, ExperimentList
from solo_diversity.experiments.runner import RunSettings, run_command, shell_line

VALUE_KEYS = {"vdna": "emd", "fid": "fid"}


@dataclass(frozen=True)
class DistanceTask:
    """One distance cell, where its result goes, and what it needs that is not there."""

    spec: DistanceSpec
    out: Path
    missing: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.spec.table}/{self.spec.id}"

    @property
    def done(self) -> bool:
        return read_value(self.out, self.spec) is not None


def read_value(path: Path, spec: DistanceSpec) -> float | None:
    """The distance a cell's JSON holds, or None when it is absent or unreadable."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        return float(record[VALUE_KEYS[spec.kind]])
    except (ValueError, KeyError, TypeError):
        return None


def _missing(spec: DistanceSpec, settings: RunSettings, env: dict[str, str]) -> list[str]:
    out = []
    for name in dict.fromkeys((spec.pretrain, spec.downstream, "imagenet")):
        path = spec.index_of(name, env)
        if "{" in path:
            out += [f"{p.split('}')[0]} (unset)" for p in path.split("{")[1:]]
        elif not (settings.workdir / path).exists():
            out.append(f"{path} (not found)")
    return list(dict.fromkeys(out))


def plan_distances(
    experiment: ExperimentList, settings: RunSettings, only: Sequence[str] = ()
) -> list[DistanceTask]:
    """Every distance cell of the list (or the cells ``only``) with its result file."""
    specs = [experiment.distance(c) for c in only] if only else list(experiment.distances)
    env = dict(os.environ)
    return [
        DistanceTask(
            spec, settings.distances / f"{spec.id}.json", tuple(_missing(spec, settings, env))
        )
        for spec in specs
    ]


def distance_command(task: DistanceTask, settings: RunSettings) -> list[str]:
    """``solo-div distance vdna|fid`` for one cell, writing its JSON."""
    spec = task.spec
    extractor = (
        [
            "--extractor",
            spec.extractor,
            "--bins",
            str(spec.bins),
            "--ranges-from",
            spec.index_of("imagenet"),
        ]
        if spec.kind == "vdna"
        else ["--feature-extractor", spec.extractor]
    )
    return [
        settings.python,
        "-m",
        "solo_diversity.cli",
        "distance",
        spec.kind,
        spec.index_of(spec.pretrain),
        spec.index_of(spec.downstream),
        *extractor,
        "--max-samples",
        str(spec.max_samples),
        "--json",
        str(task.out.resolve()),
        *settings.distance_set,
    ]


def describe_distances(
    tasks: Sequence[DistanceTask], settings: RunSettings, say: Callable[[str], None]
) -> None:
    """Print each distance cell: metric, sets, state, and the command it will run."""
    for task in tasks:
        spec = task.spec
        state = "nothing (done)" if task.done else "distance"
        say(
            f"# {task.name}: {spec.metric} {spec.pretrain} -> {spec.downstream} "
            f"max_samples={spec.max_samples:,} -> {state}"
        )
        if not task.done:
            say(shell_line(distance_command(task, settings)))


def run_distances(
    tasks: Sequence[DistanceTask], settings: RunSettings, say: Callable[[str], None]
) -> list[str]:
    """Compute the distances not done yet; returns one line per failure or skipped cell."""
    failures = []
    settings.distances.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        if task.done:
            continue
        if task.missing:
            failures.append(f"{task.name}: skipped, it needs {', '.join(task.missing)}")
            continue
        say(f"[{task.name}] {task.spec.metric} {task.spec.pretrain} -> {task.spec.downstream}")
        code = run_command(distance_command(task, settings), settings)
        if code != 0:
            failures.append(f"{task.name}: the distance failed (exit {code})")
    return failures


def read_distances(folder: Path, experiment: ExperimentList) -> dict[str, float]:
    """Our values by cell id, from ``folder/<cell id>.json`` (cells without a file are left out)."""
    if experiment.kind != "distance":
        raise UserError(f"{experiment.table} is not a distance list")
    out = {}
    for spec in experiment.distances:
        value = read_value(folder / f"{spec.id}.json", spec)
        if value is not None:
            out[spec.id] = value
    return out
