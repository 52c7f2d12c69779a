# SPDX-License-Identifier: MIT
"""What is left to run of a cell list: per cell, probe and seed, one of four states.

``done``: the results file has the probe's line for that seed (same run, probe set, label fraction
and probe mode). ``probe``: the pretraining under ``<runs>/<run_key>/seed<seed>/`` has finished
(its ``ledger.json`` exists) but the probe line is missing. ``resume``: that folder has checkpoints
of an unfinished run (pretraining auto-resumes). ``pretrain``: nothing yet. A table's script runs
what is not ``done``, so it is idempotent. The layout ``<runs>/<run_key>/seed<seed>/`` is the
scripts' (``checkpoint.dir``); a run shared by several tables (same run_key) is pretrained once, and
a result line is found by the run_key folder in its ``checkpoint`` path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from solo_diversity.experiments.cells import Probe, load_experiment
from solo_diversity.experiments.plan import ResolvedCell, resolve_cell
from solo_diversity.experiments.results import Result, fits_probe, read_results

STATES = ("done", "probe", "resume", "pretrain")
# A finished run's marker: a trained run's ledger, or an untrained baseline's (baselines.MARKER).
FINISHED = ("ledger.json", "baseline.json")


@dataclass(frozen=True)
class CellState:
    """One (cell, probe, seed) and what it still needs."""

    cell: ResolvedCell
    probe: Probe
    seed: int
    state: str

    @property
    def run_dir(self) -> str:
        return f"{self.cell.run_key}/seed{self.seed}"


def run_dir(runs: Path, run_key: str, seed: int) -> Path:
    """Where the scripts pretrain a cell's run for one seed."""
    return runs / run_key / f"seed{seed}"


def probe_done(results: list[Result], cell: ResolvedCell, probe: Probe, seed: int) -> bool:
    """Whether a line of ``results`` is ``probe`` of ``cell``'s run pretrained with ``seed``."""
    for result in results:
        record = result.record
        if cell.run_key not in Path(str(record.get("checkpoint") or "")).parts:
            continue
        if (
            str(record.get("seed")) == str(seed)
            and fits_probe(record, probe)
            and record.get("probe_mode", "protocol") == probe.mode
        ):
            return True
    return False


def pretrain_state(folder: Path | None) -> str:
    """``probe`` (finished), ``resume`` (checkpoints, unfinished) or ``pretrain`` (nothing)."""
    if folder is None or not folder.is_dir():
        return "pretrain"
    if any(any(folder.rglob(name)) for name in FINISHED):
        return "probe"
    return "resume" if any(folder.rglob("*.ckpt")) else "pretrain"


def read_optional(results: Path | None) -> list[Result]:
    """The result lines, or none when the file does not exist yet."""
    return read_results(results) if results is not None and results.is_file() else []


def table_status(
    name: str,
    results: Path | None,
    runs: Path | None,
    seeds: list[int],
    configs: Path | None = None,
    *,
    devices: int = 1,
    nodes: int = 1,
) -> list[CellState]:
    """The state of every (cell, probe, seed) of the cell list ``name``.

    Args:
        name: the cell list.
        results: the probes' JSONL (absent or None: nothing is done).
        runs: the folder of pretraining runs (None: no checkpoint exists).
        seeds: the pretraining seeds to run.
        configs: the ``yaml_configs`` folder.
        devices: devices per node the runs use (they set the global batch, hence the plan).
        nodes: nodes the runs use.
    """
    experiment = load_experiment(name, configs)
    lines = read_optional(results)
    out = []
    for spec in experiment.cells:
        cell = resolve_cell(spec, configs, devices=devices, nodes=nodes)
        for seed in seeds:
            folder = None if runs is None else run_dir(runs, cell.run_key, seed)
            pretrain = pretrain_state(folder)
            for probe in spec.probes:
                state = "done" if probe_done(lines, cell, probe, seed) else pretrain
                out.append(CellState(cell, probe, seed, state))
    return out
