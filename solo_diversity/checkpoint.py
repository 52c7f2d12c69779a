# SPDX-License-Identifier: MIT
"""Checkpoints in solo-learn's layout, and finding an interrupted run to resume.

Files are ``{checkpoint.dir}/{method}/{version}/{name}-{version}-ep={epoch}.ckpt`` with the config
in ``args.json`` beside them, so solo-learn's tools and our probe read them alike. The save
frequency is counted in reference epochs like every other epoch-counted key, then converted to
optimizer steps; the final state is always saved.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# Keys that decide whether an earlier run is the same experiment (and so may be resumed).
RUN_IDENTITY_KEYS = (
    "name",
    "method",
    "backbone",
    "method_kwargs",
    "data",
    "augmentations",
    "optimizer",
    "scheduler",
    "budget",
    "seed",
    "accumulate_grad_batches",
)


def new_version() -> str:
    """A random 8-character run id, as solo-learn makes when wandb is off."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def checkpoint_path(logdir: Path, name: str, version: str, epoch: int) -> Path:
    """``{logdir}/{version}/{name}-{version}-ep={epoch}.ckpt``."""
    return logdir / version / f"{name}-{version}-ep={epoch}.ckpt"


class SoloCheckpointer(pl.Callback):
    """Save every ``frequency_steps`` optimizer steps and at the end, in solo-learn's layout.

    Args:
        cfg: the resolved config, written to ``args.json``.
        logdir: ``{checkpoint.dir}/{method}``.
        version: the run id (the sub-folder).
        frequency_steps: steps between saves (0 saves only at the end).
        keep_prev: keep earlier checkpoints instead of replacing them.
    """

    def __init__(
        self,
        cfg: DictConfig,
        logdir: Path,
        version: str,
        frequency_steps: int,
        keep_prev: bool = False,
    ):
        self.cfg = cfg
        self.logdir = Path(logdir)
        self.version = version
        self.frequency_steps = frequency_steps
        self.keep_prev = keep_prev
        self.last_path: Path | None = None
        self.saved_at_step = -1  # micro-batches of one accumulated step share a global_step

    @property
    def version_dir(self) -> Path:
        return self.logdir / self.version

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            self.version_dir.mkdir(parents=True, exist_ok=True)
            args = OmegaConf.to_container(self.cfg, resolve=True)
            (self.version_dir / "args.json").write_text(json.dumps(args, indent=2, default=str))

    def save(self, trainer: pl.Trainer) -> Path:
        """Write the checkpoint for the current epoch (all ranks must call it)."""
        path = checkpoint_path(self.logdir, str(self.cfg.name), self.version, trainer.current_epoch)
        trainer.save_checkpoint(path)
        if (
            trainer.is_global_zero
            and self.last_path
            and self.last_path != path
            and not self.keep_prev
        ):
            self.last_path.unlink(missing_ok=True)
        self.last_path = path
        return path

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step = trainer.global_step
        if (
            self.frequency_steps
            and step
            and step % self.frequency_steps == 0
            and step != self.saved_at_step
        ):
            self.saved_at_step = step
            self.save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """An interrupted run keeps its progress: save where it stopped, to resume from."""
        if isinstance(exception, (KeyboardInterrupt, SystemExit)) and trainer.global_step:
            path = self.save(trainer)
            log.warning(
                "interrupted: progress saved to %s; rerun with auto_resume.enabled=true or "
                "resume_from_checkpoint=%s",
                path,
                path,
            )


def _identity(args: dict[str, Any]) -> dict[str, Any]:
    return {k: args.get(k) for k in RUN_IDENTITY_KEYS}


def find_resumable(logdir: Path, cfg: DictConfig, max_hours: float | None = None) -> Path | None:
    """The newest unfinished checkpoint of the same experiment under ``logdir``, if any.

    A run is the same when the keys in :data:`RUN_IDENTITY_KEYS` of its ``args.json`` equal the
    current config's; it is finished when its ``ledger.json`` exists.
    """
    if not logdir.is_dir():
        return None
    wanted = _identity(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    candidates = []
    for args_file in logdir.glob("*/args.json"):
        run_dir = args_file.parent
        if (run_dir / "ledger.json").exists():
            continue
        try:
            same = _identity(json.loads(args_file.read_text())) == wanted
        except json.JSONDecodeError:
            continue
        ckpts = sorted(run_dir.glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
        if same and ckpts:
            if max_hours and time.time() - ckpts[-1].stat().st_mtime > max_hours * 3600:
                continue
            candidates.append(ckpts[-1])
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None
