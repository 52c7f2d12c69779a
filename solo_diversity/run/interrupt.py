# SPDX-License-Identifier: MIT
"""Stopping a run on Ctrl-C, SIGTERM or SLURM's requeue signal: at a step boundary, saved, non-zero.

This module owns what a run does when it is asked to stop. The signal handlers of
:class:`GracefulStop` only record the signal; the callback acts at the next optimizer-step boundary
(``on_train_batch_end`` where ``global_step`` has just advanced, so never inside an accumulated
step), where every rank agrees through one reduction, the state is saved through
:class:`~solo_diversity.run.checkpoint.SoloCheckpointer` (so the ledger and visit counts in the file
cover exactly the trained batches) and :class:`TrainingInterrupted` ends the process with
128 + the signal number and one line on stderr saying how to resume. Under SLURM with Lightning's
auto-requeue (its ``SLURMEnvironment(auto_requeue=True, requeue_signal=SIGUSR1)``, the default when
``srun`` launched the job) the requeue signal does the same and then runs ``scontrol requeue``; the
requeued job resumes from that checkpoint when its command has ``auto_resume.enabled=true``. A
second Ctrl-C stops at once (saving only when it lands between two steps).

Ctrl-C at a terminal, ``kill -TERM -PGID``, ``timeout`` and SLURM signal every process of the run,
loader workers and DALI feed processes included. Those children ignore SIGINT and SIGTERM
(:func:`shield_child`; :func:`stop_signals_held` covers their start-up) and die with the main
process, which alone decides: it saves, stops, and tears them down. The resume hint it prints is
one shell word that hydra parses back to the checkpoint's path (:func:`resume_hint`).

Lightning's own handling is kept where it serves: its SLURM detection and requeue signal, and its
rule that a SIGUSR1 handler already installed is left alone. What it lacks is written here: its
SIGTERM handler makes the loop raise ``SIGTERMException`` (an exit code of 0, read by schedulers as
success) after the current micro-batch, inside an accumulated step; its requeue handler saves from
inside the signal handler, in the middle of a step; and Ctrl-C becomes a ``KeyboardInterrupt``
wherever the main thread happens to be.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment

from solo_diversity.data.child_signals import STOP_SIGNALS
from solo_diversity.run.checkpoint import SoloCheckpointer

_Handler = Callable[[int, FrameType | None], Any] | int | None


def _say(line: str) -> None:
    """One line the user must see even when hydra has silenced logging."""
    print(line, file=sys.stderr, flush=True)


def hydra_quoted(text: str) -> str:
    """``text`` as a quoted hydra override value that parses back to exactly ``text``.

    Inside hydra's quotes a backslash is literal except in a run that precedes a quote (or the
    closing quote), where each is doubled and the quote escaped; ``${`` would start an
    interpolation and is escaped for OmegaConf.
    """
    quote = "'" if '"' in text and "'" not in text else '"'
    body = re.sub(
        rf"(\\*)({quote}|\Z)",
        lambda m: m[1] * 2 + ("\\" + m[2] if m[2] else ""),
        text,
    )
    return quote + body.replace("${", "\\${") + quote


def resume_hint(saved: Path) -> str:
    """How to resume from ``saved``: ``auto_resume.enabled=true or '++resume_from_checkpoint=...'``.

    Checkpoint names hold ``=`` (``-ep=1-step=13``), which hydra refuses in an unquoted value, and
    a path may hold spaces or quotes: the value is quoted for hydra, then the override for the
    shell, so the hint works as pasted. ``++`` (add or override) works whether or not the config
    has the key (solo-learn's YAMLs lack it).
    """
    override = shlex.quote(f"++resume_from_checkpoint={hydra_quoted(str(saved))}")
    return f"auto_resume.enabled=true or {override}"


class TrainingInterrupted(SystemExit):
    """Raised at a step boundary after a stop signal; exits with ``128 + signum``.

    A ``SystemExit``, like Lightning's own ``SIGTERMException``, so that every entry point ends with
    that status without a traceback; but with the shell's code for a process ended by the signal
    instead of 0.

    Args:
        signum: the signal that stopped the run.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def slurm_job_id(env: Mapping[str, str]) -> str | None:
    """The job to requeue: ``<array job>_<task>`` for an array task, else ``SLURM_JOB_ID``."""
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


def requeue_slurm_job(env: Mapping[str, str]) -> tuple[bool, str]:
    """Run ``scontrol requeue`` on this job.

    Returns:
        ``(requeued, phrase)``: whether it worked and what to tell the user about it.
    """
    job = slurm_job_id(env)
    if job is None:
        return False, "could not requeue the SLURM job (SLURM_JOB_ID is not set)"
    try:
        result = subprocess.run(
            ["scontrol", "requeue", job], capture_output=True, text=True, timeout=60
        )
    except FileNotFoundError:
        return False, f"could not requeue SLURM job {job} (scontrol not found)"
    except subprocess.TimeoutExpired:
        return False, f"could not requeue SLURM job {job} (scontrol did not answer in 60 s)"
    if result.returncode != 0:
        why = (result.stderr or result.stdout).strip().splitlines()
        detail = f": {why[-1]}" if why else ""
        return False, (
            f"could not requeue SLURM job {job} (scontrol exited {result.returncode}{detail})"
        )
    return True, f"requeued SLURM job {job}"


def signal_label(signum: int, requeue: bool = False) -> str:
    """How the line names a signal: ``SIGINT (Ctrl-C)``, ``SIGTERM``, ``SLURM's requeue signal``."""
    name = signal.Signals(signum).name
    if requeue:
        return f"SLURM's requeue signal {name}"
    return f"{name} (Ctrl-C)" if signum == signal.SIGINT else name


def stop_line(
    label: str,
    step: int,
    saved: Path | None,
    requeue: tuple[bool, str] | None = None,
    auto_resume: bool = True,
) -> str:
    """The one line printed when a run stops on a signal at optimizer step ``step``.

    Args:
        label: the signal, as :func:`signal_label` names it.
        step: the optimizer step the state was saved at.
        saved: the checkpoint written (None when checkpointing is off).
        requeue: :func:`requeue_slurm_job`'s answer when the signal was SLURM's requeue signal.
        auto_resume: whether this run's command has ``auto_resume.enabled=true`` (a requeued job
            reruns the same command).
    """
    head = f"interrupted by {label} at step {step}"
    if saved is None:
        return f"{head}: nothing saved (checkpoint.enabled=false)"
    resume = resume_hint(saved)
    if requeue is None:
        return f"{head}: saved {saved}; resume with {resume}"
    requeued, phrase = requeue
    if not requeued:
        return f"{head}: saved {saved}; {phrase}; resubmit with {resume}"
    if auto_resume:
        return f"{head}: saved {saved}; {phrase}, which resumes from it (auto_resume.enabled=true)"
    return (
        f"{head}: saved {saved}; {phrase}, which starts over: its command needs "
        "auto_resume.enabled=true to resume from it"
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
        self._previous: dict[int, _Handler] = {}
        self._pid = os.getpid()
        self._last_step = -1
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
        self._last_step = trainer.global_step
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
        step = trainer.global_step
        if step == self._last_step:
            return  # inside an accumulated optimizer step
        self._last_step = step
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
            _say(line)
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
            _say(stop_line(label, trainer.global_step, saved))
            return
        last = checkpointer.last_path if checkpointer else None
        left = (
            f"resume from the last checkpoint with {resume_hint(last)}"
            if last
            else "no checkpoint of this run was saved"
        )
        _say(
            f"interrupted by {label} after step {trainer.global_step}, inside a step or a "
            f"validation: nothing saved; {left}"
        )
