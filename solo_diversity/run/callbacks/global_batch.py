# SPDX-License-Identifier: MIT
"""The global batch Lightning really runs, checked against the budget plan before the first step.

G = per-device batch x processes x accumulation must be the number of images processed per
optimizer step, or the plan's step count would not spend C. At fit time :class:`GlobalBatchCheck`
compares ``trainer.world_size * accumulate * batch`` with the plan's G and stops the run before its
first step when they differ.
"""

from __future__ import annotations

import lightning.pytorch as pl

from solo_diversity.budget.plan import BudgetPlan
from solo_diversity.errors import UserError


class WorldSizeMismatch(UserError):
    """Lightning runs another global batch than the budget plan's G."""


class GlobalBatchCheck(pl.Callback):
    """Stop before the first step when ``world size * accumulate * batch`` differs from plan G.

    Args:
        plan: the run's budget plan.
        batch_size: the per-device batch of the training loader.
    """

    def __init__(self, plan: BudgetPlan, batch_size: int):
        self.plan = plan
        self.batch_size = batch_size

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        accumulate = int(trainer.accumulate_grad_batches)
        real = trainer.world_size * accumulate * self.batch_size
        if real != self.plan.global_batch:
            raise WorldSizeMismatch(
                f"Lightning runs {trainer.world_size} processes x accumulate {accumulate} x "
                f"batch {self.batch_size} = {real} images per step, but the budget plan has "
                f"G={self.plan.global_batch}; fix devices/num_nodes/accumulate_grad_batches"
            )
