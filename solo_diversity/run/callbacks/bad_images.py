# SPDX-License-Identifier: MIT
"""The callback that stops a run whose share of unreadable images passes ``max_bad_fraction``.

The data module counts the reads and judges a share
(:meth:`~solo_diversity.data.datamodule.PretrainDataModule.check_bad_images`); this callback
decides when to ask, sums the counts over ranks, and keeps the totals in checkpoints.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from solo_diversity.data.datamodule import PretrainDataModule, bad_share_lower_bound
from solo_diversity.errors import UserError


class BadImageGuard(pl.Callback):
    """Checks the share of unreadable images as they are read, not only at the end of an epoch.

    After every ``every_n_batches`` training batches (counted by ``batch_idx``, so every rank
    checks on the same batches and the reduce stays collective), the counts are summed over ranks
    (``trainer.strategy.reduce``); once they hold at least ``min_reads`` reads, the run stops when
    even the lower confidence bound of the bad share (:func:`bad_share_lower_bound`) passes
    ``max_bad_fraction``, and all ranks raise the same :class:`UserError` together. The end of
    every train epoch and of training judge the share itself, whatever the sample size. The
    totals so far are kept in checkpoints, so a resumed run goes on counting from them (a run
    that failed fails again on resume, at once).

    Args:
        datamodule: the :class:`PretrainDataModule` whose counts to check.
        min_reads: reads (over all ranks) needed before a batch-end check can fire.
        every_n_batches: training batches between checks.

    """

    def __init__(
        self, datamodule: PretrainDataModule, min_reads: int = 256, every_n_batches: int = 1
    ) -> None:
        if every_n_batches < 1:
            raise ValueError(f"every_n_batches must be >= 1, got {every_n_batches}")
        self.datamodule = datamodule
        self.min_reads = min_reads
        self.every_n_batches = every_n_batches
        self.resumed = (0, 0)  # (bad, loaded) over all ranks before this process started
        self.totals = (0, 0)  # (bad, loaded) over all ranks at the last check
        self.failed_at_step: int | None = None

    @property
    def state_key(self) -> str:
        return "BadImageGuard"

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule, early: bool) -> None:
        dm = self.datamodule
        if trainer.world_size > 1:  # the counts of every rank: one small reduction
            local = torch.tensor([dm.bad_images, dm.loaded_images], device=pl_module.device)
            total = trainer.strategy.reduce(local, reduce_op="sum")
            assert isinstance(total, torch.Tensor)
            bad, loaded = (int(v) for v in total.tolist())
        else:  # one process: its own host counters, without a round trip through the device
            bad, loaded = int(dm.bad_images), int(dm.loaded_images)
        bad, loaded = bad + self.resumed[0], loaded + self.resumed[1]
        self.totals = (bad, loaded)
        if early and (
            bad + loaded < self.min_reads
            or bad_share_lower_bound(bad, bad + loaded) <= dm.max_bad_fraction
        ):
            return
        try:
            dm.check_bad_images(bad, loaded)
        except UserError:
            self.failed_at_step = int(trainer.global_step)
            raise

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if (batch_idx + 1) % self.every_n_batches == 0:
            self._check(trainer, pl_module, early=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer, pl_module, early=False)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer, pl_module, early=False)

    def state_dict(self) -> dict[str, int]:
        """The totals over all ranks at the last check (all ranks hold the same)."""
        return {"bad": self.totals[0], "loaded": self.totals[1]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.resumed = (int(state_dict.get("bad", 0)), int(state_dict.get("loaded", 0)))
        self.totals = self.resumed
