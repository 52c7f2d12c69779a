# SPDX-License-Identifier: MIT
"""Stopping a run on Ctrl-C, SIGTERM or SLURM's requeue signal: at a step boundary, saved, non-zero.

This module owns what a run does when it is asked to stop. The signal handlers of
:class:`~solo_diversity.run.callbacks.graceful_stop.GracefulStop` only record the signal; the
callback acts at the next optimizer-step boundary (``on_train_batch_end`` where ``global_step``
has just advanced, so never inside an accumulated step), where every rank agrees through one
reduction, the state is saved through the run's
:class:`~solo_diversity.run.callbacks.checkpointer.SoloCheckpointer` (so the ledger and visit
counts in the file cover exactly the trained batches) and :class:`TrainingInterrupted` ends the
process with 128 + the signal number and one line on stderr saying how to resume. Under SLURM
with Lightning's
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

import re
import shlex
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any] | int | None


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
