# SPDX-License-Identifier: MIT
"""The callback that stops a run on Ctrl-C, SIGTERM or SLURM's requeue signal: GracefulStop.

Its signal handlers only record the signal; it acts at the next optimizer-step boundary, saves
through the run's :class:`~solo_diversity.run.callbacks.checkpointer.SoloCheckpointer` and raises
:class:`~solo_diversity.run.interrupt.TrainingInterrupted`. Why a run stops this way, and the lines
it prints, are :mod:`~solo_diversity.run.interrupt`'s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment

from solo_diversity.console import say
from solo_diversity.data.child_signals import STOP_SIGNALS
from solo_diversity.run.callbacks.checkpointer import SoloCheckpointer
from solo_diversity.run.callbacks.steps import StepBoundary
from solo_diversity.run.interrupt import (
    Handler,
    TrainingInterrupted,
    requeue_slurm_job,
    resume_hint,
    signal_label,
    stop_line,
)


def _requeue_signal(trainer: pl.Trainer) -> int | None:
    """Lightning's SLURM requeue signal when the run is under SLURM with auto-requeue, else None."""
    # The cluster environment Lightning's own signal connector reads (not every strategy exposes
    # one, e.g. the single-device strategy of a one-task SLURM job).
    environment = trainer._accelerator_connector.cluster_environment
    if isinstance(environment, SLURMEnvironment) and environment.auto_requeue:
        return int(environment.requeue_signal) if environment.requeue_signal else None
    return None


class GracefulStop(pl.Callback):
    """Stop at the next optimizer-step boundary after Ctrl-C, SIGTERM or SLURM's requeue signal.

    Use :meth:`catching_signals` around ``trainer.fit``; add the callback after every callback
    whose ``on_train_batch_end`` must have run for a step before it is saved (the checkpointer's
    own save at that step is reused, not repeated).

    Args:
        checkpointer: the run's checkpointer (None when checkpointing is off).
        auto_resume: whether the run's command has ``auto_resume.enabled=true``.
    """

    def __init__(self, checkpointer: SoloCheckpointer | None, auto_resume: bool) -> None:
        self.checkpointer = checkpointer
        self.auto_resume = auto_resume
        self.received: list[int] = []  # signals this process received, in order
        self._signals: tuple[int, ...] = STOP_SIGNALS
        self._requeue: int | None = None
        self._previous: dict[int, Handler] = {}
        self._pid = os.getpid()
        self._boundary = StepBoundary()
        self._aborted = False
        if checkpointer is not None:  # in DDP the stop flags ride on its per-step reduction
            checkpointer.flags_to_agree = self._flags

    @property
    def requested(self) -> str | None:
        """The name of the first stop signal this process received, or None."""
        return signal.Signals(self.received[0]).name if self.received else None

    @contextlib.contextmanager
    def catching_signals(self, trainer: pl.Trainer) -> Iterator[None]:
        """Install the flag-setting handlers for the duration of ``trainer.fit``, then restore."""
        self._pid = os.getpid()
        self._requeue = _requeue_signal(trainer)
        self._signals = STOP_SIGNALS + ((self._requeue,) if self._requeue is not None else ())
        self._previous = {signum: signal.getsignal(signum) for signum in self._signals}
        # Installed before fit: Lightning then leaves the requeue signal to us (it only adds its
        # own handler where none is set) and keeps ours in its SIGTERM chain until _take_over.
        self._take_over()
        try:
            yield
        finally:
            if threading.current_thread() is threading.main_thread():
                for signum, handler in self._previous.items():
                    signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def _take_over(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers (Lightning skips them there too)
        for signum in self._signals:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            # A forked loader worker inherited the handler (before its shield_child ran): the
            # signal went to the whole process group, and the main process acts on its copy.
            return
        if signum == signal.SIGINT and signal.SIGINT in self.received:
            self._aborted = True
            raise KeyboardInterrupt  # a second Ctrl-C: stop at once
        self.received.append(signum)

    # Lightning registers its SIGTERM handler (which makes the loop exit 0 after the current
    # micro-batch) just before the sanity check; the first hooks after that take SIGTERM back.
    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._take_over()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._take_over()
        self._boundary.start(trainer)
        agreed = self._agreed(trainer)
        if agreed is not None:  # asked to stop during the start-up: nothing new to save
            resumed = trainer.ckpt_path
            self._stop(trainer, agreed, Path(resumed) if resumed else None, before_first=True)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not self._boundary.finished(trainer):
            return  # inside an accumulated optimizer step
        step = trainer.global_step
        agreed = self._agreed(trainer)
        if agreed is None:
            return
        if 0 <= trainer.max_steps <= step:
            return  # the last step is done: the run finishes and saves its final checkpoint
        saved = self.checkpointer.save_at_step(trainer) if self.checkpointer else None
        self._stop(trainer, agreed, saved)

    def _flags(self) -> list[int]:
        """The stop flags of this process: SIGINT, SIGTERM, the requeue signal received (0 or 1)."""
        return [
            int(signal.SIGINT in self.received),
            int(signal.SIGTERM in self.received),
            int(self._requeue is not None and self._requeue in self.received),
        ]

    def _agreed(self, trainer: pl.Trainer) -> tuple[int, bool] | None:
        """The stop every rank agrees on, ``(signum, requeue)``, or None.

        In DDP the flags are summed over ranks: by the checkpointer's reduction of this step when
        it made one (one collective per step, not two), else by a reduction here. On one device
        nothing is reduced and nothing waits for the device.
        """
        mine = self._flags()
        agreed_step, summed = self.checkpointer.agreed if self.checkpointer else (-1, [])
        if trainer.world_size > 1 and agreed_step == trainer.global_step:
            mine = summed
        elif trainer.world_size > 1:
            flags = torch.tensor(mine, dtype=torch.int64, device=trainer.strategy.root_device)
            mine = [int(v) for v in trainer.strategy.reduce(flags, reduce_op="sum").tolist()]  # type: ignore[union-attr]
        if mine[2] and self._requeue is not None:
            return self._requeue, True
        if mine[1]:
            return int(signal.SIGTERM), False
        if mine[0]:
            return int(signal.SIGINT), False
        return None

    def _stop(
        self,
        trainer: pl.Trainer,
        agreed: tuple[int, bool],
        saved: Path | None,
        before_first: bool = False,
    ) -> None:
        signum, requeue = agreed
        answer = requeue_slurm_job(os.environ) if requeue and trainer.is_global_zero else None
        if trainer.is_global_zero:
            label = signal_label(signum, requeue)
            if before_first:
                line = f"interrupted by {label} before this run's first step: nothing new to save"
                if saved is not None:
                    line += f"; resume with {resume_hint(saved)}"
                if answer is not None:
                    line += f"; {answer[1]}"
            else:
                line = stop_line(label, trainer.global_step, saved, answer, self.auto_resume)
            say(line)
        raise TrainingInterrupted(signum)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """A ``KeyboardInterrupt`` (a second Ctrl-C) ends the run at once: one line on what is left.

        The checkpointer's ``on_exception`` (earlier in the callback list) has saved by then when
        the interrupt landed between two steps.
        """
        if not isinstance(exception, KeyboardInterrupt) or not trainer.is_global_zero:
            return
        checkpointer = self.checkpointer
        saved = checkpointer.exception_saved if checkpointer else None
        label = "a second SIGINT (Ctrl-C)" if self._aborted else "KeyboardInterrupt"
        if saved is not None:
            say(stop_line(label, trainer.global_step, saved))
            return
        last = checkpointer.last_path if checkpointer else None
        left = (
            f"resume from the last checkpoint with {resume_hint(last)}"
            if last
            else "no checkpoint of this run was saved"
        )
        say(
            f"interrupted by {label} after step {trainer.global_step}, inside a step or a "
            f"validation: nothing saved; {left}"
        )
