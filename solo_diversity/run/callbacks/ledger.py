# SPDX-License-Identifier: MIT
"""The budget ledger: proof that a run processed exactly the images its plan promised.

A Lightning callback counts the images of every micro-batch on every rank and its own optimizer
steps (``on_before_optimizer_step``), and at the end sums the images over ranks, checks that every
rank counted the same steps, and compares both with the plan: C_eff = S * G images in S steps.
Lightning's ``global_step`` is not consulted, so a ledger that lost or double-counted a step
cannot agree with the plan by borrowing the trainer's count. The counts, and rank 0's histogram
of images per step, survive resumption (they are stored in the checkpoint, so ``ledger.json``
covers every process of the run; only finished optimizer steps count: images of a batch in flight
or of an unfinished accumulation are left out, as the resumable loader leaves them out of its
position) and are written to ``ledger.json`` beside the checkpoints. A mismatch fails the run: a
budget-normalized comparison is worthless if the budgets differ.
Whichever loggers are on receive ``images_seen`` on every logged step, the plan as ``budget/*``
hyperparameters and, at the end, the ledger as ``ledger/*`` metrics.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from solo_diversity.budget.plan import BudgetPlan
from solo_diversity.errors import UserError

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
        self.resumed_images = 0  # global images seen before this process started (checkpoint)
        self.resumed_steps = 0  # optimizer steps before this process started (checkpoint)
        self.local_images = 0  # images this rank processed since start or resume
        self.pending = 0  # images of micro-batches since the last optimizer step (this rank)
        self.images_per_step: dict[int, int] = {}  # local images per step -> number of steps
        self.resumed_per_step: dict[int, int] = {}  # the same for rank 0 before the resume
        self.resumes = 0
        self.summary: dict[str, Any] = {}

    @property
    def state_key(self) -> str:
        return "BudgetLedger"

    @property
    def per_step_rank0(self) -> dict[int, int]:
        """Images per optimizer step -> number of steps, over every process of the run (rank 0)."""
        merged = dict(self.resumed_per_step)
        for images, steps in self.images_per_step.items():
            merged[images] = merged.get(images, 0) + steps
        return dict(sorted(merged.items()))

    @property
    def local_steps(self) -> int:
        """Optimizer steps this process counted since start or resume."""
        return sum(self.images_per_step.values())

    def _global(self, trainer: pl.Trainer | None, value: int) -> int:
        """``value`` summed over ranks (int64: a float32 sum is inexact above 2**24 images)."""
        if trainer is None or trainer.world_size <= 1:
            return value
        tensor = torch.tensor(value, dtype=torch.int64, device=trainer.strategy.root_device)
        return int(trainer.strategy.reduce(tensor, reduce_op="sum"))  # type: ignore[arg-type]

    def _steps_range(self, trainer: pl.Trainer | None) -> tuple[int, int]:
        """(fewest, most) optimizer steps counted by any rank, resumed ones included."""
        steps = self.resumed_steps + self.local_steps
        if trainer is None or trainer.world_size <= 1:
            return steps, steps
        both = torch.tensor([-steps, steps], dtype=torch.int64, device=trainer.strategy.root_device)
        low, high = trainer.strategy.reduce(both, reduce_op="max").tolist()  # type: ignore[union-attr]
        return -int(low), int(high)

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
        # Loggers write a step's metrics only every log_every_n_steps; a log call costs ~0.7 ms,
        # a few percent of a GPU step, so the total is logged only on the steps that are written.
        if (
            not getattr(trainer, "_logger_connector", None)
            or trainer._logger_connector.should_update_logs
        ):
            seen = self.resumed_images + self.local_images * trainer.world_size
            pl_module.log(
                "images_seen", float(seen), on_step=True, on_epoch=False, rank_zero_only=True
            )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for logger in trainer.loggers:
            logger.log_hyperparams({f"budget/{k}": v for k, v in self.plan.as_dict().items()})

    def state_dict(self) -> dict[str, Any]:
        """The counts of finished optimizer steps (a collective in DDP: every rank must call it)."""
        trainer = getattr(self, "_trainer", None)
        finished = self.local_images - self.pending  # not a batch in flight, nor half a step
        _, steps = self._steps_range(trainer)
        return {
            "images_seen": self.resumed_images + self._global(trainer, finished),
            "steps": steps,
            "plan": self.plan.as_dict(),
            "resumes": self.resumes,
            "images_per_step_rank0": self.per_step_rank0,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.resumed_images = int(state_dict["images_seen"])
        self.resumed_steps = int(state_dict.get("steps", 0))
        self.resumes = int(state_dict.get("resumes", 0)) + 1
        saved = state_dict.get("images_per_step_rank0") or {}  # absent before it was saved
        self.resumed_per_step = {int(k): int(v) for k, v in saved.items()}
        log.info("ledger resumed at %d images seen", self.resumed_images)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["budget_ledger"] = self.state_dict()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        images = self.resumed_images + self._global(trainer, self.local_images)
        fewest, steps = self._steps_range(trainer)
        plan = self.plan
        self.summary = {
            **plan.as_dict(),
            "images_seen": images,
            "optimizer_steps": steps,
            "images_per_step_rank0": {str(k): v for k, v in self.per_step_rank0.items()},
            "world_size": trainer.world_size,
            "resumes": self.resumes,
            "match": images == plan.C_eff and fewest == steps == plan.steps,
        }
        if trainer.is_global_zero and self.json_path is not None:
            self._write_json()
        metrics = ledger_metrics(self.summary)
        for logger in trainer.loggers:  # rank 0 only: Lightning's loggers log on global zero
            logger.log_metrics(metrics, step=trainer.global_step)
        if not self.summary["match"]:
            ranks = f" (ranks counted {fewest} to {steps})" if fewest != steps else ""
            raise LedgerMismatch(
                f"budget ledger mismatch: counted {images} images in {steps} optimizer "
                f"steps{ranks}, the plan is C_eff={plan.C_eff} images in {plan.steps} steps "
                f"(the trainer's global step is {trainer.global_step})"
            )

    def _write_json(self) -> None:
        assert self.json_path is not None
        try:
            self.json_path.parent.mkdir(parents=True, exist_ok=True)
            self.json_path.write_text(json.dumps(self.summary, indent=2) + "\n")
        except OSError as err:
            raise UserError(
                f"could not write the ledger {self.json_path} ({err.strerror or err})"
            ) from err
