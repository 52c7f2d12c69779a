# SPDX-License-Identifier: MIT
"""A linear probe's config (``main_linear.py``), resolved once into a :class:`LinearConfig`.

:func:`~solo_diversity.config.probe.resolve_linear_cfg` fills solo-learn's defaults and checks the
keys; :func:`resolve_linear` reads the result once: the checkpoint to probe, the data and backbone
keys the probe sets over the pretraining run's (``args.json``), the probe's settings
(:class:`~solo_diversity.config.probe.ProbeSettings`), the machine, the checkpoints, the resume
request, the loggers and the plain ``record`` that ``args.json`` and the loggers hold. The
checkpoint's method is known only once its ``args.json`` is read, so an unset ``optimizer.lr`` or
``weight_decay`` is filled afterwards with the probe recipe's (:meth:`LinearConfig.with_rates`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from solo_diversity.config.loggers import check_logger_keys
from solo_diversity.config.probe import (
    ProbeSettings,
    check_probe_settings,
    resolve_linear_cfg,
    scaled_lr,
)
from solo_diversity.config.run_config import (
    CheckpointSettings,
    Hardware,
    LoggerSettings,
    ResumeSettings,
    checkpoint_settings,
    config_record,
    logger_settings,
    resolve_hardware,
    resume_settings,
    trainer_keys,
)
from solo_diversity.methods.settings import plain

# What main_linear.py tells a user whose config asks for a GPU on a machine without one.
LINEAR_GPU_HINT = "run with accelerator=cpu (and strategy=auto sync_batchnorm=False on one CPU)"


@dataclass(frozen=True)
class LinearConfig:
    """One linear probe, resolved (see the module docstring).

    Attributes:
        checkpoint_file: ``pretrained_feature_extractor``.
        pretrain_method: ``pretrain_method`` (None: the checkpoint's own).
        data: the probe's ``data`` keys that are set (they override the run's).
        backbone: the probe's ``backbone`` keys that are set (they override the run's).
        lr: ``optimizer.lr`` as configured (None: the probe recipe's, see :meth:`with_rates`).
        weight_decay: ``optimizer.weight_decay`` as configured (None: the recipe's).
        settings: the probe's settings (an unset rate reads 0 until :meth:`with_rates`).
        hardware: the machine the probe trains on.
        dali_device: the probe's own ``dali.device`` (never the run's).
        checkpoint: the ``checkpoint`` group.
        resume: ``resume_from_checkpoint`` and ``auto_resume``.
        loggers: the loggers.
        trainer: the config's ``pl.Trainer`` keys.
        accumulate_grad_batches: micro-batches per optimizer step.
        results: the JSON-lines file the result is appended to.
        record: the resolved config as plain values (``args.json``, the loggers, the resume
            identity).
    """

    checkpoint_file: Path
    pretrain_method: str | None
    data: dict[str, Any]
    backbone: dict[str, Any]
    lr: float | None
    weight_decay: float | None
    settings: ProbeSettings
    hardware: Hardware
    dali_device: str
    checkpoint: CheckpointSettings
    resume: ResumeSettings
    loggers: LoggerSettings
    trainer: dict[str, Any]
    accumulate_grad_batches: int
    results: Path
    record: dict[str, Any]

    @property
    def rates_set(self) -> bool:
        """Whether the config sets both ``optimizer.lr`` and ``optimizer.weight_decay``."""
        return self.lr is not None and self.weight_decay is not None

    def with_rates(self, lr: float, weight_decay: float) -> LinearConfig:
        """The config with its unset ``optimizer.lr``/``weight_decay`` set to these.

        Args:
            lr: the rate at a global batch of 256 (scaled as solo-learn scales it).
            weight_decay: the weight decay.
        """
        base = self.lr if self.lr is not None else lr
        decay = self.weight_decay if self.weight_decay is not None else weight_decay
        settings = self.settings
        optimizer = replace(
            settings.optimizer,
            lr=scaled_lr(base, settings.optimizer.batch_size, settings.devices, settings.num_nodes),
            base_lr=base,
            weight_decay=decay,
        )
        record = copy.deepcopy(self.record)
        if self.lr is None:
            record["optimizer"]["lr"] = lr
        if self.weight_decay is None:
            record["optimizer"]["weight_decay"] = weight_decay
        return replace(
            self,
            lr=base,
            weight_decay=decay,
            settings=replace(settings, optimizer=optimizer),
            record=record,
        )


def _set_values(node: Any) -> dict[str, Any]:
    """A config group's keys that are set (not null), as plain values."""
    return {k: v for k, v in plain(node).items() if v is not None}


def resolve_linear(raw: DictConfig) -> LinearConfig:
    """Resolve a linear config once, before any file is read.

    Args:
        raw: the composed hydra config (``linear_div.yaml`` or a solo-learn linear YAML).

    Raises:
        UserError: an unsupported or unknown key, a bad value, an unknown logger, or a GPU asked
            for on a machine without one.
    """
    cfg = resolve_linear_cfg(raw)
    settings = check_probe_settings(cfg)
    check_logger_keys(cfg)
    method = cfg.pretrain_method
    lr, decay = cfg.optimizer.lr, cfg.optimizer.weight_decay
    return LinearConfig(
        checkpoint_file=Path(str(cfg.pretrained_feature_extractor)),
        pretrain_method=None if method in (None, "None") else str(method),
        data=_set_values(cfg.data),
        backbone=_set_values(cfg.backbone),
        lr=None if lr is None else float(lr),
        weight_decay=None if decay is None else float(decay),
        settings=settings,
        hardware=resolve_hardware(cfg, LINEAR_GPU_HINT),
        dali_device=str(cfg.dali.device),
        checkpoint=checkpoint_settings(cfg),
        resume=resume_settings(cfg),
        loggers=logger_settings(cfg),
        trainer=trainer_keys(cfg),
        accumulate_grad_batches=int(cfg.accumulate_grad_batches),
        results=Path(str(cfg.results)),
        record=config_record(cfg),
    )
