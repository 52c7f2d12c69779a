# SPDX-License-Identifier: MIT
"""What is left to run of a cell list: per cell, probe and seed, one of four states.

``done``: the results file has the probe's line for that seed. ``probe``: the pretraining under
``<runs>/<run_key>/seed<seed>/`` has finished (its ``ledger.json`` exists) but the probe line is
missing. ``resume``: that folder has checkpoints of an unfinished run (pretraining auto-resumes).
``pretrain``: nothing yet. A table's script runs what is not ``done``, so it is idempotent. The
layout ``<runs>/<run_key>/seed<seed>/`` is the scripts' (``checkpoint.dir``), and a run shared by
several tables (same run_key) is pretrained once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from solo_diversity.report.match import Slot, pair_table
from solo_diversity.report.results import assign, read_results


@dataclass(frozen=True)
class CellState:
    """One (cell, probe, seed) and what it still needs."""

    slot: Slot
    seed: int
    state: str

    @property
    def run_dir(self) -> str:
        return f"{self.slot.cell.run_key}/seed{self.seed}"


def run_dir(runs: Path, run_key: str, seed: int) -> Path:
    """Where the scripts pretrain a cell's run for one seed."""
    return runs / run_key / f"seed{seed}"


def table_status(
    name: str,
    results: Path | None,
    runs: Path | None,
    seeds: list[int],
    configs: Path | None = None,
) -> list[CellState]:
    """The state of every (cell, probe, seed) of the cell list ``name``.

    Args:
        name: the cell list.
        results: the probes' JSONL (absent or None: nothing is done).
        runs: the folder of pretraining runs (None: no checkpoint exists).
        seeds: the pretraining seeds to run.
        configs: the ``yaml_configs`` folder.
    """
    slots = list(pair_table(name, configs).slots)
    lines = read_results(results) if results is not None and results.is_file() else []
    by_slot = assign(lines, slots).by_slot
    out = []
    for slot in slots:
        seen = {str(r.seed) for r in by_slot.get(slot.label, [])}
        for seed in seeds:
            if str(seed) in seen:
                state = "done"
            else:
                state = _run_state(None if runs is None else run_dir(runs, slot.cell.run_key, seed))
            out.append(CellState(slot, seed, state))
    return out


def _run_state(folder: Path | None) -> str:
    if folder is None or not folder.is_dir():
        return "pretrain"
    if any(folder.rglob("ledger.json")):
        return "probe"
    return "resume" if any(folder.rglob("*.ckpt")) else "pretrain"
