# SPDX-License-Identifier: MIT
"""Checkpoints in solo-learn's layout, and finding an interrupted run to resume.

Files are ``{checkpoint.dir}/{method}/{version}/{name}-{version}-ep={epoch}.ckpt`` with the config
in ``args.json`` beside them, so solo-learn's tools and our probe read them alike. The save
frequency is counted in epochs like every other epoch-counted key (under the plan's ``epoch_keys``
reading), then converted to optimizer steps; ``checkpoint.every_n_steps`` adds saves every K
optimizer steps. Saves during training are named ``...-ep={epoch}-step={step}.ckpt``; the final
state is always saved under solo-learn's name. Every file is written to a temporary name and
published atomically with a sha256 beside it (:mod:`~solo_diversity.checkpoint_files`); the previous
checkpoint is removed (unless ``keep_prev``) only once the new one is complete.
:func:`find_resumable` resumes from the newest checkpoint that passes its checksum, saying which
ones it skipped and why. Stopping on a signal (and saving at that step) is
:mod:`~solo_diversity.interrupt`'s.
"""

from __future__ import annotations

import json
import secrets
import string
import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from solo_diversity import checkpoint_files as files
from solo_diversity.errors import UserError

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


def checkpoint_path(
    logdir: Path, name: str, version: str, epoch: int, step: int | None = None
) -> Path:
    """``{logdir}/{version}/{name}-{version}-ep={epoch}[-step={step}].ckpt``."""
    tail = "" if step is None else f"-step={step}"
    return logdir / version / f"{name}-{version}-ep={epoch}{tail}.ckpt"


def every_n_steps(cfg: DictConfig) -> int:
    """``checkpoint.every_n_steps`` (0 when unset): optimizer steps between step checkpoints."""
    value = OmegaConf.select(cfg, "checkpoint.every_n_steps", default=0)
    value = 0 if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(
            f"checkpoint.every_n_steps must be an integer >= 0 (0 = off), got {value!r}"
        )
    return value


def _say(line: str) -> None:
    """One line the user must see even when hydra has silenced logging."""
    print(line, file=sys.stderr, flush=True)


class SoloCheckpointer(pl.Callback):
    """Save every ``frequency_steps`` optimizer steps and at the end, in solo-learn's layout.

    ``checkpoint.every_n_steps`` in ``cfg`` adds a save every that many optimizer steps. Each save
    is written to a temporary file, published atomically with its sha256, and only then is the
    previous checkpoint removed (unless ``keep_prev``).

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
        self.every_n_steps = every_n_steps(cfg)
        self.keep_prev = keep_prev
        self.last_path: Path | None = None
        self.saved_at_step = -1  # micro-batches of one accumulated step share a global_step
        self.exception_saved: Path | None = None  # the save on_exception made, if any
        self._step_at_batch_start = 0
        self._at_boundary = True  # no training step or validation half-way

    @property
    def version_dir(self) -> Path:
        return self.logdir / self.version

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            self.version_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.version_dir.glob(f"*.ckpt*{files.TMP_SUFFIX}"):
                if stale.is_file():
                    stale.unlink()  # a save that was killed half-way
            args = OmegaConf.to_container(self.cfg, resolve=True)
            target = self.version_dir / "args.json"
            try:
                target.write_text(json.dumps(args, indent=2, default=str))
            except OSError as err:
                raise UserError(f"could not write {target} ({err.strerror or err})") from err

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A resumed run replaces the checkpoint it started from, as it would its own.
        resumed = trainer.ckpt_path
        if resumed and Path(resumed).parent.resolve() == self.version_dir.resolve():
            self.last_path = Path(resumed)
            self.saved_at_step = trainer.global_step
        self._at_boundary = True

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._step_at_batch_start = trainer.global_step
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
        path = checkpoint_path(
            self.logdir, str(self.cfg.name), self.version, trainer.current_epoch, step
        )
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
        self._at_boundary = step != self._step_at_batch_start
        if step and step != self.saved_at_step and self._due(step):
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
        :class:`~solo_diversity.interrupt.GracefulStop`, which saves before it raises (so this
        save is then the same file).
        """
        if (
            isinstance(exception, (KeyboardInterrupt, SystemExit))
            and trainer.global_step
            and self._at_boundary
        ):
            self.exception_saved = self.save_at_step(trainer)


def _identity(args: dict[str, Any]) -> dict[str, Any]:
    return {k: args.get(k) for k in RUN_IDENTITY_KEYS}


def _newest_first(paths: list[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)


def find_resumable(logdir: Path, cfg: DictConfig, max_hours: float | None = None) -> Path | None:
    """The newest intact checkpoint of an unfinished run of the same experiment, if any.

    A run is the same when the keys in :data:`RUN_IDENTITY_KEYS` of its ``args.json`` equal the
    current config's; it is finished when its ``ledger.json`` exists. Checkpoints older than
    ``max_hours`` are ignored. Candidates are tried newest first; one that fails
    :func:`~solo_diversity.checkpoint_files.verify` (checksum mismatch, or unloadable) is skipped
    with one line on stderr saying which and why.
    """
    if not logdir.is_dir():
        return None
    wanted = _identity(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    candidates: list[Path] = []
    for args_file in logdir.glob("*/args.json"):
        run_dir = args_file.parent
        if (run_dir / "ledger.json").exists():
            continue
        try:
            same = _identity(json.loads(args_file.read_text())) == wanted
        except json.JSONDecodeError:
            continue
        if same:
            candidates += run_dir.glob("*.ckpt")
    now = time.time()
    for ckpt in _newest_first(candidates):
        if max_hours and now - ckpt.stat().st_mtime > max_hours * 3600:
            continue
        reason = files.verify(ckpt)
        if reason is None:
            return ckpt
        _say(f"auto-resume: skipping {ckpt}: {reason}")
    return None
