# SPDX-License-Identifier: MIT
"""One task of a cell list as a hydra app, so hydra's multirun and its launchers run the sweep.

``solo-div experiment run TABLE --launcher slurm`` starts
``python -m solo_diversity.experiments.sweep --multirun hydra/launcher=submitit_slurm task=...``
hydra's submitit launcher submits one SLURM job per (cell, seed) as a job array, with the partition,
nodes, GPUs per node (one task per GPU) and time limit given; Lightning reads SLURM's variables in
each task for multi-GPU and multi-node DDP. On a time-out submitit requeues the job
(``max_num_timeout``) and the pretraining auto-resumes from its last checkpoint; a finished cell is
skipped because each job re-checks the results file and the run folder when it starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from solo_diversity.entry import exit_on_user_error
from solo_diversity.experiments.runner import RunSettings, plan_tasks, run_task


@dataclass
class SweepTask:
    """The config of one sweep job: which cell and seed, and the sweep's paths."""

    table: str = "???"
    task: str = "???"  # <cell id>:<seed>; one value per job (hydra sweeps a product otherwise)
    results: str = "???"
    runs: str = "???"
    workdir: str = "."
    configs: str = "???"
    entry_dir: str = "???"
    python: str = "python"
    devices: int = 1
    nodes: int = 1
    pretrain_set: list[str] = field(default_factory=list)
    probe_set: list[str] = field(default_factory=list)


ConfigStore.instance().store(name="solo_div_sweep", node=SweepTask)


def _single_process_env() -> dict[str, str]:
    """The environment without SLURM's task variables: a probe is one process, not the job's DDP."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SUBMITIT_"))}


@hydra.main(version_base="1.2", config_path=None, config_name="solo_div_sweep")
def main(cfg: DictConfig) -> None:
    """Run one (cell, seed): pretrain or resume it, then (global rank 0) its missing probes."""
    with exit_on_user_error():
        settings = RunSettings(  # the job's config, read once
            results=Path(cfg.results),
            runs=Path(cfg.runs),
            workdir=Path(cfg.workdir),
            entry_dir=Path(cfg.entry_dir),
            python=str(cfg.python),
            devices=int(cfg.devices),
            nodes=int(cfg.nodes),
            pretrain_set=tuple(cfg.pretrain_set),
            probe_set=tuple(cfg.probe_set),
            configs=Path(cfg.configs),
        )
        rank = int(os.environ.get("SLURM_PROCID", "0"))
        cell, _, seed = str(cfg.task).rpartition(":")
        for task in plan_tasks(str(cfg.table), settings, [int(seed)], [cell]):
            if task.idle:
                print(f"[{task.name}] done already; nothing to run")
                continue
            failures = run_task(task, settings, env=_single_process_env(), probe=rank == 0)
            if failures:
                raise SystemExit("\n".join(failures))


if __name__ == "__main__":
    main()
