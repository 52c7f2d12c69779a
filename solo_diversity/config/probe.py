# SPDX-License-Identifier: MIT
"""The linear probe's settings, resolved once: solo-learn's keys and defaults, our two modes.

solo-learn's ``main_linear.py`` YAMLs (``scripts/linear/*/*.yaml``) run unchanged: this module
fills the defaults of its ``solo/args/linear.py`` and ``LinearModel.add_and_assert_specific_cfg``,
rejects the upstream keys that the probe does not implement (one line each), scales the learning
rate as upstream (``lr * batch_size * devices * num_nodes / 256``, no accumulation factor) and
turns the result into frozen dataclasses. The LR schedules are pure functions of the step/epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from solo_diversity.budget.schedules import warmup_cosine
from solo_diversity.config.keys import (
    Number,
    check_numbers,
    reject_unknown_top_level,
    reject_unsupported,
    trainer_arguments,
)
from solo_diversity.config.pretrain import copy_cfg
from solo_diversity.errors import UserError
from solo_diversity.methods.base import fill_defaults
from solo_diversity.methods.optim import OPTIMIZER_KWARGS_DEFAULTS
from solo_diversity.methods.settings import count_devices, plain

PROBE_MODES = ("protocol", "features")
PROBE_OPTIMIZERS = ("sgd", "lars", "adam", "adamw")
PROBE_SCHEDULERS = ("step", "warmup_cosine", "none")

# solo-learn's linear-eval defaults (solo/args/linear.py, solo/methods/linear.py, Checkpointer,
# AutoResumer), plus ours: probe.mode, data.label_fraction, data.train_views, results.
LINEAR_DEFAULTS: dict[str, Any] = {
    "name": "linear",
    "seed": 5,
    "probe.mode": "protocol",
    "pretrain_method": None,
    "backbone.kwargs": {},
    "data.label_fraction": 1.0,
    "data.train_views": 0,
    "optimizer.name": "sgd",
    "optimizer.batch_size": 256,
    "optimizer.lr": None,  # null: the probe recipe's rate for the run's method and scale
    "optimizer.weight_decay": None,  # null: the probe recipe's (0 but for ImageNet Barlow Twins)
    "optimizer.exclude_bias_n_norm_wd": False,
    "optimizer.kwargs": {},
    "scheduler.name": "step",
    "scheduler.lr_decay_steps": None,
    "scheduler.min_lr": 0.0,
    "scheduler.warmup_start_lr": 3e-5,
    "scheduler.warmup_epochs": 10,
    "scheduler.interval": "step",
    "label_smoothing": 0.0,
    "max_epochs": 100,
    "devices": 1,
    "num_nodes": 1,
    "accelerator": "auto",
    "strategy": "auto",
    "precision": "32-true",
    "accumulate_grad_batches": 1,
    "checkpoint.enabled": False,
    "checkpoint.dir": "trained_models",
    "checkpoint.frequency": 1,
    "checkpoint.keep_prev": False,
    "auto_resume.enabled": False,
    "auto_resume.max_hours": 36,
    "resume_from_checkpoint": None,
    "wandb.enabled": False,
    "wandb.project": "solo-learn",
    "wandb.entity": None,
    "wandb.offline": False,
    "performance.disable_channel_last": False,
    "dali.device": "auto",
    "results": "results/linear.jsonl",
}


def added_key_overrides(argv: Sequence[str], keys: Iterable[str]) -> list[str]:
    """Command-line overrides where ``key=v`` and ``+key=v`` of ``keys`` read as ``++key=v``.

    hydra sets a key that the config lacks only as ``+key`` and one that it has only without the
    ``+``; solo-learn's linear YAMLs lack this project's keys (``results``, ``probe.mode``) and
    some of its own defaults (``seed``). ``++`` (add or override) reads the same on every config,
    and the rewrite leaves a rewritten line unchanged (DDP children re-run the script with it).

    Args:
        argv: ``sys.argv[1:]``.
        keys: dotted keys; one ending in ``.`` stands for every key under it.
    """
    prefixes = tuple(key if key.endswith(".") else f"{key}=" for key in keys)
    return [f"++{arg.lstrip('+')}" if arg.lstrip("+").startswith(prefixes) else arg for arg in argv]


# What main_linear.py accepts without a ``+`` on any linear YAML: every key with a default here.
LINEAR_COMMAND_LINE_KEYS = (
    *LINEAR_DEFAULTS,
    "backbone.kwargs.",
    "optimizer.kwargs.",
    "data.index_seed",
    "data.index_cache",
    "sync_batchnorm",
)

# Upstream linear keys that this probe leaves out: key -> (values meaning "off", why).
LINEAR_UNSUPPORTED: dict[str, tuple[tuple[Any, ...], str]] = {
    "mixup": ((0, 0.0), "mixup training is not implemented; set mixup=0"),
    "cutmix": ((0, 0.0), "cutmix training is not implemented; set cutmix=0"),
    "auto_augment": ((False,), "timm RandAugment training views are not implemented"),
    "finetune": ((False,), "the probe keeps the backbone frozen (linear evaluation only)"),
    "optimizer.layer_decay": ((0, 0.0), "layer-wise LR decay applies to finetuning only"),
    "data.fraction": (
        (-1, -1.0),
        "the labelled subset is data.label_fraction (stratified and nested); set that instead",
    ),
}

# Top-level keys of solo-learn's linear schema (scripts/linear/*, solo/args/linear.py,
# LinearModel, main_linear.py) and this project's (probe, results); Trainer arguments pass too.
LINEAR_TOP_LEVEL = frozenset(
    {
        "name",
        "pretrained_feature_extractor",
        "pretrain_method",
        "backbone",
        "data",
        "optimizer",
        "scheduler",
        "checkpoint",
        "auto_resume",
        "wandb",
        "dali",
        "seed",
        "resume_from_checkpoint",
        "strategy",
        "num_nodes",
        "max_epochs",
        "devices",
        "sync_batchnorm",
        "accelerator",
        "precision",
        "finetune",
        "mixup",
        "cutmix",
        "label_smoothing",
        "auto_augment",
        "accumulate_grad_batches",
        "performance",
        "probe",
        "results",
    }
)

# Every numeric key of a linear config: type first (ranges with their own lines below).
LINEAR_NUMBERS: dict[str, Number] = {
    "seed": Number("int", 0, 2**32 - 1),
    "optimizer.batch_size": Number("int"),
    "optimizer.lr": Number("float", 0, nullable=True),
    "optimizer.weight_decay": Number("float", 0, nullable=True),
    "optimizer.kwargs.momentum": Number("float", 0),
    "scheduler.warmup_epochs": Number("float", 0),
    "scheduler.warmup_start_lr": Number("float", 0),
    "scheduler.min_lr": Number("float", 0),
    "data.label_fraction": Number("float"),
    "data.train_views": Number("int", nullable=True),
    "data.num_workers": Number("int", 0),
    "label_smoothing": Number("float"),
    "max_epochs": Number("int"),
    "num_nodes": Number("int", 1),
    "accumulate_grad_batches": Number("int", 1),
    "checkpoint.frequency": Number("float", 0),
    "auto_resume.max_hours": Number("float", 0),
}


def _unset(value: Any) -> bool:
    """None, or the string ``None`` that solo-learn's YAMLs write (``pretrained_feature_extractor:
    None``, ``entity: None``) and YAML reads as text.
    """
    return value is None or (isinstance(value, str) and value.strip() in ("", "None", "null"))


def scaled_lr(lr: float, batch_size: int, devices: int, num_nodes: int) -> float:
    """solo-learn's linear-eval LR scaling: ``lr * batch_size * devices * num_nodes / 256``.

    Args:
        lr: ``optimizer.lr`` as configured (the rate at a global batch of 256).
        batch_size: ``optimizer.batch_size``, per device.
        devices: devices per node.
        num_nodes: nodes.

    Returns:
        The learning rate the optimizer runs with.
    """
    return lr * batch_size * devices * num_nodes / 256


def step_decay(epoch: int, milestones: Sequence[int], gamma: float = 0.1) -> float:
    """MultiStepLR's factor: ``gamma ** #{m in milestones : epoch >= m}`` (epochs from 0)."""
    return float(gamma ** sum(epoch >= m for m in milestones))


@dataclass(frozen=True)
class ProbeOptimizer:
    """The optimizer as it runs: ``lr`` is already scaled (``base_lr`` is the configured one)."""

    name: str
    lr: float
    base_lr: float
    weight_decay: float
    batch_size: int
    exclude_bias_n_norm_wd: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeScheduler:
    """The LR schedule: ``step`` (x0.1 at each of ``lr_decay_steps`` epochs), ``warmup_cosine``
    (per ``interval``), or ``none``.
    """

    name: str
    interval: str = "step"
    lr_decay_steps: tuple[int, ...] = ()
    warmup_epochs: float = 10
    warmup_start_lr: float = 3e-5
    min_lr: float = 0.0

    def factor(self, i: int, *, base_lr: float, total: int, warmup: int) -> float:
        """The LR multiplier after ``i`` scheduler steps (epochs for ``step``, else ``interval``).

        Args:
            i: scheduler steps taken so far.
            base_lr: the optimizer's scaled rate.
            total: scheduler steps of the whole run (``warmup_cosine`` only).
            warmup: warmup scheduler steps (``warmup_cosine`` only).
        """
        if self.name == "step":
            return step_decay(i, self.lr_decay_steps)
        if self.name == "warmup_cosine" and base_lr:
            start = self.warmup_start_lr if self.warmup_epochs > 0 else base_lr
            return warmup_cosine(i, total, warmup, base_lr, start, self.min_lr) / base_lr
        return 1.0


@dataclass(frozen=True)
class ProbeSettings:
    """Everything the probe reads from its config, resolved."""

    mode: str
    optimizer: ProbeOptimizer
    scheduler: ProbeScheduler
    max_epochs: int
    label_fraction: float
    train_views: int
    label_smoothing: float
    devices: int
    num_nodes: int
    seed: int
    channels_last: bool

    @property
    def global_batch(self) -> int:
        """Images per optimizer step over all devices and nodes."""
        return self.optimizer.batch_size * self.devices * self.num_nodes


def resolve_linear_cfg(raw: DictConfig) -> DictConfig:
    """A non-struct copy of a linear config with solo-learn's defaults filled and its checks run.

    Raises:
        UserError: an unsupported upstream key, or a bad mode, optimizer, scheduler or value.
    """
    cfg = copy_cfg(raw)
    reject_unsupported(cfg, LINEAR_UNSUPPORTED, "main_linear.py")
    for key in ("data", "backbone", "optimizer", "scheduler", "probe"):
        if OmegaConf.select(cfg, key, default=None) is None:
            cfg[key] = {}
    fill_defaults(cfg, LINEAR_DEFAULTS)
    known = LINEAR_TOP_LEVEL | trainer_arguments()
    reject_unknown_top_level(cfg, known, "yaml_configs/linear_div.yaml")
    check_numbers(cfg, LINEAR_NUMBERS)
    if _unset(cfg.pretrained_feature_extractor if "pretrained_feature_extractor" in cfg else None):
        raise UserError("set pretrained_feature_extractor=<path to a .ckpt>")
    if _unset(cfg.wandb.entity):
        cfg.wandb.entity = None
    name = str(cfg.optimizer.name)
    if name not in PROBE_OPTIMIZERS:
        raise UserError(f"optimizer.name={name!r} is unknown; choose {', '.join(PROBE_OPTIMIZERS)}")
    # solo-learn's linear parse_cfg fills the same per-optimizer kwargs as its pretraining.
    kwargs = {**OPTIMIZER_KWARGS_DEFAULTS.get(name, {}), **plain(cfg.optimizer.kwargs)}
    cfg.optimizer.kwargs = kwargs
    return cfg


def _check_scheduler(cfg: DictConfig) -> ProbeScheduler:
    sch = cfg.scheduler
    name = str(sch.name)
    if name not in PROBE_SCHEDULERS:
        why = {
            "reduce": "ReduceLROnPlateau has no metric to monitor in solo-learn's linear eval",
            "exponential": "solo-learn passes weight_decay as its gamma",
        }.get(name, "unknown")
        raise UserError(
            f"scheduler.name={name!r} is not supported ({why}); choose "
            f"{', '.join(PROBE_SCHEDULERS)}"
        )
    interval = str(sch.interval)
    if interval not in ("step", "epoch"):
        raise UserError(f"scheduler.interval={interval!r} must be step or epoch")
    steps: tuple[int, ...] = ()
    if name == "step":
        if _unset(sch.lr_decay_steps):
            raise UserError("scheduler.name=step needs scheduler.lr_decay_steps, e.g. [60, 80]")
        steps = tuple(int(s) for s in sch.lr_decay_steps)
    return ProbeScheduler(
        name=name,
        interval=interval,
        lr_decay_steps=steps,
        warmup_epochs=float(sch.warmup_epochs),
        warmup_start_lr=float(sch.warmup_start_lr),
        min_lr=float(sch.min_lr),
    )


def check_probe_settings(cfg: DictConfig) -> ProbeSettings:
    """Check every probe value before the checkpoint is read (its LR may still be the recipe's).

    The probe recipe needs the checkpoint's method, so ``optimizer.lr``/``weight_decay`` may be
    null here; every other bad value fails now, in one line, before any file is opened.

    Returns:
        The settings, with an unset rate read as 0 (the recipe's fills it later).
    """
    filled = copy_cfg(cfg)
    fill_defaults(filled, {"optimizer.lr": 0.0, "optimizer.weight_decay": 0.0})
    return probe_settings(filled)


def probe_settings(cfg: DictConfig) -> ProbeSettings:
    """Typed settings of a config resolved by :func:`resolve_linear_cfg`."""
    mode = str(cfg.probe.mode)
    if mode not in PROBE_MODES:
        raise UserError(f"probe.mode={mode!r} is unknown; choose {' or '.join(PROBE_MODES)}")
    label_fraction = float(cfg.data.label_fraction)
    if not 0 < label_fraction <= 1:
        raise UserError(
            f"data.label_fraction={label_fraction} must be in (0, 1], e.g. 0.05, 0.1, 0.5 or 1"
        )
    train_views = int(cfg.data.train_views or 0)
    if train_views < 0:
        raise UserError(f"data.train_views={train_views} must be >= 0")
    if train_views and mode != "features":
        raise UserError(
            f"data.train_views={train_views} applies to probe.mode=features; the protocol draws "
            "fresh views every epoch"
        )
    max_epochs = int(cfg.max_epochs)
    if max_epochs < 1:
        raise UserError(f"max_epochs={max_epochs} must be >= 1")
    smoothing = float(cfg.label_smoothing)
    if not 0 <= smoothing < 1:
        raise UserError(f"label_smoothing={smoothing} must be in [0, 1)")
    devices, nodes = count_devices(cfg.devices), int(cfg.num_nodes)
    opt = cfg.optimizer
    batch = int(opt.batch_size)
    if batch < 1:
        raise UserError(f"optimizer.batch_size={batch} must be >= 1")
    scheduler = _check_scheduler(cfg)
    if opt.lr is None or opt.weight_decay is None:
        raise UserError(
            "optimizer.lr/weight_decay are null: run_linear fills them from the probe recipe of "
            "the checkpoint's method; set them to probe otherwise"
        )
    optimizer = ProbeOptimizer(
        name=str(opt.name),
        lr=scaled_lr(float(opt.lr), batch, devices, nodes),
        base_lr=float(opt.lr),
        weight_decay=float(opt.weight_decay),
        batch_size=batch,
        exclude_bias_n_norm_wd=bool(opt.exclude_bias_n_norm_wd),
        kwargs=plain(opt.kwargs),
    )
    return ProbeSettings(
        mode=mode,
        optimizer=optimizer,
        scheduler=scheduler,
        max_epochs=max_epochs,
        label_fraction=label_fraction,
        train_views=train_views,
        label_smoothing=smoothing,
        devices=devices,
        num_nodes=nodes,
        seed=int(cfg.seed),
        channels_last=not bool(cfg.performance.disable_channel_last),
    )
