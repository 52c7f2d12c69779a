# SPDX-License-Identifier: MIT
"""The callback that writes a run's checkpoints in solo-learn's layout (:class:`SoloCheckpointer`).

File names, the checkpoint cadence keys and reading a checkpoint back are
:mod:`~solo_diversity.run.checkpoint`'s; atomic publishing is
:mod:`~solo_diversity.run.checkpoint_files`'s. This callback decides when to save: every
``frequency_steps`` and ``every_n_steps`` optimizer steps, every ``every_minutes`` of training, at
the end, and on an interrupt that lands on a step boundary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from solo_diversity.errors import UserError
from solo_diversity.run import checkpoint_files as files
from solo_diversity.run.callbacks.steps import StepBoundary
from solo_diversity.run.checkpoint import checkpoint_path


class SoloCheckpointer(pl.Callback):
    """Save every ``frequency_steps`` optimizer steps and at the end, in solo-learn's layout.

    ``every_n_steps`` (``checkpoint.every_n_steps``) adds a save every that many optimizer steps,
    and ``every_minutes`` (``checkpoint.every_minutes``) one at the first step boundary that many
    minutes of training after the previous save (in DDP at the same step on every rank). Each save
    is written to a temporary file, published atomically with its sha256, and only then is the
    previous checkpoint removed (unless ``keep_prev``).

    Args:
        record: the resolved config as plain containers, written to ``args.json``; its ``name``
            names the checkpoint files.
        logdir: ``{checkpoint.dir}/{method}``.
        version: the run id (the sub-folder).
        frequency_steps: steps between saves (0 saves only at the end).
        keep_prev: keep earlier checkpoints instead of replacing them.
        every_n_steps: optimizer steps between step checkpoints (0: off).
        every_minutes: minutes of training between step checkpoints (0: off).
    """

    def __init__(
        self,
        record: dict[str, Any],
        logdir: Path,
        version: str,
        frequency_steps: int,
        keep_prev: bool = False,
        *,
        every_n_steps: int = 0,
        every_minutes: float = 0.0,
    ):
        self.record = record
        self.name = str(record["name"])
        self.logdir = Path(logdir)
        self.version = version
        self.frequency_steps = frequency_steps
        self.every_n_steps = every_n_steps
        self.every_seconds = 60 * every_minutes
        self._saved_time = time.monotonic()  # of the last save, or of the training's start
        self.keep_prev = keep_prev
        self.last_path: Path | None = None
        self.saved_at_step = -1  # micro-batches of one accumulated step share a global_step
        self.exception_saved: Path | None = None  # the save on_exception made, if any
        self._boundary = StepBoundary()
        self._at_boundary = True  # no training step or validation half-way
        # Flags that ride on this callback's per-step reduction in DDP (the stop signals of
        # interrupt.GracefulStop), so that a step has one agreement between ranks, not two.
        self.flags_to_agree: Callable[[], list[int]] | None = None
        self.agreed: tuple[int, list[int]] = (-1, [])  # (step, those flags summed over ranks)

    @property
    def version_dir(self) -> Path:
        return self.logdir / self.version

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            self.version_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.version_dir.glob(f"*.ckpt*{files.TMP_SUFFIX}"):
                if stale.is_file():
                    stale.unlink()  # a save that was killed half-way
            target = self.version_dir / "args.json"
            try:
                target.write_text(json.dumps(self.record, indent=2, default=str))
            except OSError as err:
                raise UserError(f"could not write {target} ({err.strerror or err})") from err

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A resumed run replaces the checkpoint it started from, as it would its own.
        resumed = trainer.ckpt_path
        if resumed and Path(resumed).parent.resolve() == self.version_dir.resolve():
            self.last_path = Path(resumed)
            self.saved_at_step = trainer.global_step
        self._at_boundary = True
        self._boundary.start(trainer)
        self._saved_time = time.monotonic()

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._at_boundary = False

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._at_boundary = False

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._at_boundary = True

    def save(self, trainer: pl.Trainer, final: bool = False) -> Path:
        """Write the current state atomically (all ranks must call it) and drop the previous one.

        Args:
            trainer: the trainer to save.
            final: name it solo-learn's ``...-ep={epoch}.ckpt`` (the end of training) instead of
                ``...-ep={epoch}-step={step}.ckpt``.

        Raises:
            UserError: when the file cannot be written (e.g. a full disk); the previous checkpoint
                is left intact.

        """
        step = None if final else trainer.global_step
        path = checkpoint_path(self.logdir, self.name, self.version, trainer.current_epoch, step)
        tmp = files.temporary_path(path)
        try:
            trainer.save_checkpoint(tmp)
            if trainer.is_global_zero:
                files.publish(tmp, path)
        except OSError as err:
            if trainer.is_global_zero and tmp.is_file():
                tmp.unlink()
            kept = f"; {self.last_path} is intact" if self.last_path else ""
            raise UserError(
                f"could not write checkpoint {path} ({err.strerror or err}){kept}"
            ) from err
        if (
            trainer.is_global_zero
            and self.last_path
            and self.last_path != path
            and not self.keep_prev
        ):
            files.remove(self.last_path)
        self.last_path = path
        self._saved_time = time.monotonic()
        return path

    def save_at_step(self, trainer: pl.Trainer) -> Path:
        """Save at the current optimizer step unless that step is saved already; the file's path.

        Call it at a step boundary (``on_train_batch_end`` where ``global_step`` just advanced):
        the ledger and visit counts then cover exactly the trained batches.
        """
        step = trainer.global_step
        if step == self.saved_at_step and self.last_path is not None:
            return self.last_path
        self.saved_at_step = step
        return self.save(trainer)

    def _due(self, step: int) -> bool:
        return any(
            every and step % every == 0 for every in (self.frequency_steps, self.every_n_steps)
        )

    def _due_by_time(self, trainer: pl.Trainer) -> bool:
        """Whether ``every_minutes`` have passed since the last save, on any rank.

        On one device this reads the clock only. In DDP it is the step's one collective, so that
        every rank saves at the same step: it also sums :attr:`flags_to_agree` into
        :attr:`agreed`, which spares the stop its own reduction (each one waits for the step).
        """
        due = bool(self.every_seconds) and time.monotonic() - self._saved_time >= self.every_seconds
        if trainer.world_size == 1 or not (self.every_seconds or self.flags_to_agree):
            return due
        extra = self.flags_to_agree() if self.flags_to_agree else []
        flags = torch.tensor([int(due), *extra], dtype=torch.int64)
        summed = trainer.strategy.reduce(flags.to(trainer.strategy.root_device), reduce_op="sum")
        agreed = [int(v) for v in summed.tolist()]  # type: ignore[union-attr]
        self.agreed = (trainer.global_step, agreed[1:])
        return bool(agreed[0])

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step = trainer.global_step
        # A boundary: this batch's optimizer step ran (not a micro-batch inside an accumulation).
        self._at_boundary = self._boundary.finished(trainer)
        if not step or step == self.saved_at_step or 0 <= trainer.max_steps <= step:
            return  # the last step is saved once, by on_train_end
        # The clock is read only at a boundary: never inside an accumulated optimizer step.
        timed = self._at_boundary and self._due_by_time(trainer)
        if timed or self._due(step):
            self.save_at_step(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer, final=True)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """An interrupt that lands on a step boundary keeps its progress: save that step.

        A ``KeyboardInterrupt`` or ``SystemExit`` raised between two optimizer steps (by a callback,
        or Lightning's ``SIGTERMException``) saves there; one raised inside a step or a validation
        saves nothing, since that state is half-way. Ctrl-C and SIGTERM themselves are handled by
        :class:`~solo_diversity.run.callbacks.GracefulStop`, which saves before it raises (so this
        save is then the same file).
        """
        if (
            isinstance(exception, (KeyboardInterrupt, SystemExit))
            and trainer.global_step
            and self._at_boundary
        ):
            self.exception_saved = self.save_at_step(trainer)
