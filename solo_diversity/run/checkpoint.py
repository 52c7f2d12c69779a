# SPDX-License-Identifier: MIT
"""Checkpoints in solo-learn's layout: writing them, and reading one back.

Files are ``{checkpoint.dir}/{method}/{version}/{name}-{version}-ep={epoch}.ckpt`` with the config
in ``args.json`` beside them, so solo-learn's tools and our probe read them alike. The save
frequency is counted in epochs like every other epoch-counted key (under the plan's ``epoch_keys``
reading), then converted to optimizer steps; ``checkpoint.every_n_steps`` adds saves every K
optimizer steps and ``checkpoint.every_minutes`` (30 by default) every M minutes (both read by
:mod:`~solo_diversity.config.run_config`). Saves during
training are named ``...-ep={epoch}-step={step}.ckpt``; the final state is always saved under
solo-learn's name, once (a save due at the last step is that save). Every file is written to a
temporary name and published atomically with a sha256 beside it
(:mod:`~solo_diversity.run.checkpoint_files`); the previous checkpoint is removed (unless
``keep_prev``) only once the new one is complete. Choosing the run and checkpoint to resume is
:mod:`~solo_diversity.run.resume`'s; stopping on a signal (and saving at that step) is
:mod:`~solo_diversity.run.interrupt`'s.
"""

from __future__ import annotations

import secrets
import string
from pathlib import Path
from typing import Any

import torch


def new_version() -> str:
    """A random 8-character run id, as solo-learn makes when wandb is off."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def checkpoint_path(
    logdir: Path, name: str, version: str, epoch: int, step: int | None = None
) -> Path:
    """``{logdir}/{version}/{name}-{version}-ep={epoch}[-step={step}].ckpt``."""
    tail = "" if step is None else f"-step={step}"
    return logdir / version / f"{name}-{version}-ep={epoch}{tail}.ckpt"


def read_checkpoint(path: str | Path) -> Any:
    """A checkpoint's contents, memory-mapped where the file allows it (its tensors are not read).

    Files in torch's legacy format cannot be memory-mapped; they are read whole.
    """
    try:
        return torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except RuntimeError as err:
        if "mmap" not in str(err):
            raise
        return torch.load(path, map_location="cpu", weights_only=False)


def checkpoint_step(path: str | Path) -> int:
    """The optimizer step a checkpoint was saved at."""
    return int(read_checkpoint(path).get("global_step", 0))
