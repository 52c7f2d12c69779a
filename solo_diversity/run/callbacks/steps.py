# SPDX-License-Identifier: MIT
"""The one answer to "did an optimizer step just finish?", shared by every callback that asks.

Under gradient accumulation ``on_train_batch_end`` runs once per micro-batch, and only the last
micro-batch of a step advances ``trainer.global_step``. A callback that saves, stops or reads the
clock must act there, never inside an accumulated step: :class:`StepBoundary` remembers the step
of the last boundary it saw, and :meth:`StepBoundary.finished` says whether a new one was reached.
"""

from __future__ import annotations

import lightning.pytorch as pl


class StepBoundary:
    """Tell, at the end of a training batch, whether its optimizer step has just run.

    Call :meth:`start` from ``on_train_start`` and :meth:`finished` once from every
    ``on_train_batch_end``.
    """

    def __init__(self) -> None:
        self.last_step = -1

    def start(self, trainer: pl.Trainer) -> None:
        """Take the step training starts (or resumes) from as the last boundary."""
        self.last_step = trainer.global_step

    def finished(self, trainer: pl.Trainer) -> bool:
        """Whether ``global_step`` advanced since the last boundary (and remember this one)."""
        if trainer.global_step == self.last_step:
            return False
        self.last_step = trainer.global_step
        return True
