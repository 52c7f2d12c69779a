# SPDX-License-Identifier: MIT
"""The callback that stores a run's identity in its checkpoints and checks it on resume.

What the identity holds and what a resume may change are :mod:`~solo_diversity.run.identity`'s.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from solo_diversity.run.identity import check_identity


class RunIdentity(pl.Callback):
    """Store the run identity in every checkpoint and check it when a run resumes.

    Args:
        identity: this run's :func:`~solo_diversity.run.identity.run_identity`.
    """

    def __init__(self, identity: dict[str, Any]) -> None:
        self.identity = identity

    @property
    def state_key(self) -> str:
        return "RunIdentity"

    def state_dict(self) -> dict[str, Any]:
        return dict(self.identity)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore: the identity is checked in :meth:`on_load_checkpoint`."""

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        saved = (checkpoint.get("callbacks") or {}).get(self.state_key)
        check_identity(saved, self.identity, str(trainer.ckpt_path))
