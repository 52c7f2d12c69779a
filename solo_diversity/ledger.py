# SPDX-License-Identifier: MIT
"""The budget ledger: proof that a run processed exactly the images its plan promised.

A Lightning callback counts the images of every micro-batch on every rank, groups them by optimizer
step, and at the end sums the ranks and compares with C_eff = S * G. The count survives resumption
(it is stored in the checkpoint) and is written to ``ledger.json`` beside the checkpoints. A
mismatch fails the run: a budget-normalized comparison is worthless if the budgets differ.
Whichever loggers are on receive ``images_seen`` per step, the plan as ``budget/*``
hyperparameters and, at the end, the ledger as ``ledger/*`` metrics.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from solo_diversity.budget import BudgetPlan

log = logging.getLogger(__name__)


class LedgerMismatch(RuntimeError):
    """Images seen differ from the plan's effective budget."""


def ledger_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The numbers of a ledger summary as ``ledger/<key>`` metrics (``match`` as 1.0 or 0.0)."""
    return {
        f"ledger/{key}": float(value)
        for key, value in summary.items()
        if isinstance(value, (int, float))
    }


class BudgetLedger(pl.Callback):
    """Count images per optimizer step on every rank and check the total against the plan.

    Args:
        plan: the run's budget plan.
        json_path: where to write the ledger at the end (rank 0 only); None to skip.
    """

    def __init__(self, plan: BudgetPlan, json_path: str | Path | None = None):
        self.plan = plan
        self.json_path = Path(json_path) if json_path else None
        self.resumed_images = (
            0  # global images seen before this process started (from a checkpoint)
        )
        self.resumed_steps = 0
        self.local_images = 0  # images this rank processed since start or resume
        self.pending = 0  # images of micro-batches since the last optimizer step (this rank)
        self.images_per_step: dict[int, int] = {}  # local images per step -> number of steps
        self.resumes = 0
        self.summary: dict[str, Any] = {}

    @property
    def state_key(self) -> str:
        return "BudgetLedger"

    def _global(self, trainer: pl.Trainer, value: int) -> int:
        total = trainer.strategy.reduce(torch.tensor(float(value)), reduce_op="sum")
        return int(round(float(total)))

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        n = int(batch[0].shape[0])
        self.local_images += n
        self.pending += n

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        self.images_per_step[self.pending] = self.images_per_step.get(self.pending, 0) + 1
        self.pending = 0

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        seen = self.resumed_images + self.local_images * trainer.world_size
        pl_module.log("images_seen", float(seen), on_step=True, on_epoch=False, rank_zero_only=True)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for logger in trainer.loggers:
            logger.log_hyperparams({f"budget/{k}": v for k, v in self.plan.as_dict().items()})

    def state_dict(self) -> dict[str, Any]:
        trainer = getattr(self, "_trainer", None)
        local = self.local_images
        total = self.resumed_images + (self._global(trainer, local) if trainer else local)
        return {
            "images_seen": total,
            "steps": self.resumed_steps + sum(self.images_per_step.values()),
            "plan": self.plan.as_dict(),
            "resumes": self.resumes,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.resumed_images = int(state_dict["images_seen"])
        self.resumed_steps = int(state_dict.get("steps", 0))
        self.resumes = int(state_dict.get("resumes", 0)) + 1
        log.info("ledger resumed at %d images seen", self.resumed_images)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["budget_ledger"] = self.state_dict()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        images = self.resumed_images + self._global(trainer, self.local_images)
        steps = trainer.global_step
        plan = self.plan
        self.summary = {
            **plan.as_dict(),
            "images_seen": images,
            "optimizer_steps": steps,
            "images_per_step_rank0": {str(k): v for k, v in sorted(self.images_per_step.items())},
            "world_size": trainer.world_size,
            "resumes": self.resumes,
            "match": images == plan.C_eff and steps == plan.steps,
        }
        if trainer.is_global_zero and self.json_path is not None:
            self.json_path.parent.mkdir(parents=True, exist_ok=True)
            self.json_path.write_text(json.dumps(self.summary, indent=2) + "\n")
        metrics = ledger_metrics(self.summary)
        for logger in trainer.loggers:  # rank 0 only: Lightning's loggers log on global zero
            logger.log_metrics(metrics, step=steps)
        if not self.summary["match"]:
            raise LedgerMismatch(
                f"budget ledger mismatch: saw {images} images in {steps} steps, "
                f"the plan is C_eff={plan.C_eff} images in {plan.steps} steps"
            )
