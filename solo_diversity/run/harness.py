# SPDX-License-Identifier: MIT
"""The training harness: resolved settings in, a Trainer with its loggers and callbacks out.

``main_pretrain.py`` and ``main_linear.py`` build their Trainer here, and ``main_knn.py`` (which
trains nothing) takes its device from :func:`compute_device`, so the machine rules are written
once: precision 16 runs 32-true on the CPU (bf16 is emulated there and
about 5x slower than fp32), SyncBatchNorm only on GPUs across processes, Lightning's own
checkpointing off (:class:`~solo_diversity.run.callbacks.SoloCheckpointer` saves), and the
callbacks in one order: the run's own, the loggers', the caller's, then those that must see a
finished step last (a stop on a signal).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import Logger

from solo_diversity.budget.world import sync_batchnorm_for
from solo_diversity.config.run_config import CheckpointSettings, Hardware
from solo_diversity.run.callbacks import SoloCheckpointer
from solo_diversity.run.loggers import finish_loggers, log_run_config, logger_callbacks

GPU_ONLY_PRECISIONS = ("16", "16-mixed")


def machine_precision(hardware: Hardware, note: Callable[[str], None]) -> Any:
    """The precision the machine runs: ``16``/``16-mixed`` on the CPU become ``32-true``.

    Args:
        hardware: the run's machine.
        note: called with the config's precision when it is replaced (each entry point words it).
    """
    precision = str(hardware.precision)
    if hardware.accelerator == "cpu" and precision in GPU_ONLY_PRECISIONS:
        note(precision)
        return "32-true"
    return precision


def one_device(hardware: Hardware) -> Hardware:
    """``hardware`` on one device of one node (the probe's features mode)."""
    return replace(
        hardware, devices=1, num_nodes=1, world_size=1, strategy="auto", sync_batchnorm=False
    )


def trainer_arguments(
    hardware: Hardware,
    keys: dict[str, Any],
    *,
    callbacks: list[pl.Callback],
    loggers: Sequence[Logger],
    precision_note: Callable[[str], None],
    **limits: Any,
) -> dict[str, Any]:
    """``pl.Trainer`` arguments: the config's Trainer keys, made valid for the machine.

    Args:
        hardware: the run's machine.
        keys: the config's keys that the Trainer takes (``run_config.trainer_keys``).
        callbacks: every callback, in order (:func:`ordered_callbacks`).
        loggers: the run's loggers (none: logging off).
        precision_note: see :func:`machine_precision`.
        limits: the entry point's own arguments (when to stop and validate).
    """
    passed = dict(keys)
    passed.update(
        accelerator=hardware.accelerator,
        devices=hardware.devices,
        num_nodes=hardware.num_nodes,
        precision=machine_precision(hardware, precision_note),
        strategy=hardware.strategy,
        enable_checkpointing=False,
        callbacks=callbacks,
        logger=list(loggers) if loggers else False,
        **limits,
    )
    passed["sync_batchnorm"] = sync_batchnorm_for(
        hardware.sync_batchnorm, hardware.accelerator, hardware.world_size
    )
    return passed


def ordered_callbacks(
    own: Sequence[pl.Callback],
    loggers: list[Logger],
    extra: Sequence[pl.Callback] = (),
    last: Sequence[pl.Callback] = (),
) -> list[pl.Callback]:
    """The run's callbacks, then the loggers' and the caller's, then those that go ``last``."""
    return [*own, *logger_callbacks(loggers), *extra, *last]


def run_version(resume: str | None, new: Callable[[], str]) -> str:
    """The run id: the resumed checkpoint's folder, else a new one from ``new``."""
    return Path(resume).parent.name if resume else new()


def checkpointer(
    record: dict[str, Any],
    settings: CheckpointSettings,
    logdir: Path,
    version: str,
    frequency_steps: Callable[[], int],
) -> SoloCheckpointer | None:
    """The run's checkpointer, or None with ``checkpoint.enabled=false``.

    Args:
        record: the resolved config as plain containers, written to ``args.json`` beside the
            checkpoints (its ``name`` names them).
        settings: the ``checkpoint`` group.
        logdir: the folder of the entry point's runs.
        version: the run id.
        frequency_steps: optimizer steps between saves (asked only when saving is on).
    """
    if not settings.enabled:
        return None
    return SoloCheckpointer(
        record,
        logdir,
        version,
        frequency_steps(),
        settings.keep_prev,
        every_n_steps=settings.every_n_steps,
        every_minutes=settings.every_minutes,
    )


@contextlib.contextmanager
def logging_run(
    trainer: pl.Trainer, loggers: list[Logger], record: dict[str, Any], model: pl.LightningModule
) -> Iterator[None]:
    """Log the resolved config (``record``, plain containers) before the fit; close the loggers
    after it, whatever happens.
    """
    log_run_config(loggers, record, model)
    try:
        yield
    finally:
        if trainer.is_global_zero:
            finish_loggers(loggers)


def compute_device(hardware: Hardware) -> str:
    """The torch device of a run that builds no Trainer (``main_knn.py``): ``cuda`` or ``cpu``.

    The same :class:`~solo_diversity.config.run_config.Hardware` decides it as for the runs that
    train, so the features and the sweep run where a Trainer would have put the model.
    """
    return "cuda" if hardware.on_gpu else "cpu"
