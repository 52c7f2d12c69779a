# SPDX-License-Identifier: MIT
"""A pretraining run's settings as typed values, resolved once from its config.

:func:`~solo_diversity.config.pretrain.resolve_pretrain_cfg` fills the defaults and checks the
keys; :func:`resolve_run` reads that config once into frozen dataclasses: the machine
(:class:`Hardware`, with the accelerator decided here and nowhere else), the data
(:class:`DataSettings`), the budget plan (a :class:`~solo_diversity.budget.plan.BudgetPlan`), the
checkpoints, the resume request, the loggers and the loader (:mod:`~solo_diversity.config.loader`).
Code below the entry points takes these values. The method keeps solo-learn's ``Cls(cfg)``:
:attr:`RunConfig.method_cfg` is the config with the plan attached, the bridge into solo-learn's
classes and nothing else; :attr:`RunConfig.record` is that config as plain containers (the
``args.json`` of every checkpoint, the loggers' hyperparameters, what auto-resume compares).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf

from solo_diversity.budget.plan import BudgetPlan
from solo_diversity.budget.world import resolve_world
from solo_diversity.config.loader import LoaderSettings, loader_settings
from solo_diversity.config.loggers import logger_names, wandb_entity
from solo_diversity.config.pretrain import attach_plan, trainer_devices
from solo_diversity.errors import UserError

# What an entry point tells a user whose config asks for a GPU on a machine without one.
PRETRAIN_GPU_HINT = "run with accelerator=cpu devices=1"


@dataclass(frozen=True)
class Hardware:
    """The machine a run trains on, as the Trainer will see it.

    Attributes:
        accelerator: ``cpu``, ``gpu``, ... (``auto`` already decided).
        devices: Lightning's ``devices`` for that accelerator (a count on the CPU).
        num_nodes: nodes.
        world_size: processes in total, as Lightning resolves them.
        precision: the config's ``precision`` (the harness applies the CPU rule).
        strategy: Lightning's ``strategy`` (``None`` and ``"none"`` read as ``"auto"``).
        sync_batchnorm: the config's ``sync_batchnorm`` (the harness applies the GPU-only rule).
    """

    accelerator: str
    devices: Any
    num_nodes: int
    world_size: int
    precision: Any
    strategy: Any
    sync_batchnorm: bool

    @property
    def on_gpu(self) -> bool:
        """Whether the run trains on a GPU."""
        return self.accelerator in ("gpu", "cuda")


@dataclass(frozen=True)
class DataSettings:
    """Where a run's images are and how they are read (the ``data`` and ``dali`` groups)."""

    dataset: str
    train_path: str
    val_path: str | None
    format: str
    index_seed: int
    index_cache: Path
    fraction: float
    stratified: bool
    no_labels: bool


@dataclass(frozen=True)
class CheckpointSettings:
    """The ``checkpoint`` group: whether and where a run saves, and how often.

    Attributes:
        enabled: ``checkpoint.enabled``.
        dir: ``checkpoint.dir``.
        frequency: epochs between saves.
        keep_prev: keep earlier checkpoints instead of replacing them.
        every_n_steps: optimizer steps between step checkpoints (0: off; :func:`every_n_steps`).
        every_minutes: minutes of training between step checkpoints (0: off;
            :func:`every_minutes`).
    """

    enabled: bool
    dir: Path
    frequency: float
    keep_prev: bool
    every_n_steps: int = 0
    every_minutes: float = 0.0

    def logdir(self, method: str) -> Path:
        """``{checkpoint.dir}/{method}``: the folder of a method's runs."""
        return self.dir / method


@dataclass(frozen=True)
class ResumeSettings:
    """``resume_from_checkpoint`` and the ``auto_resume`` group."""

    checkpoint: str | None
    auto: bool
    max_hours: float


@dataclass(frozen=True)
class LoggerSettings:
    """The ``loggers`` list and the ``wandb`` group, checked."""

    names: tuple[str, ...]
    root: Path
    run_name: str
    wandb: bool
    wandb_project: str
    wandb_entity: str | None
    wandb_offline: bool


@dataclass(frozen=True)
class TrainSizes:
    """What the budget plan needs from the opened index."""

    dataset_size: int
    subset_size: int
    num_classes: int


@dataclass(frozen=True)
class RunConfig:
    """A pretraining run, resolved once (see the module docstring).

    Attributes:
        method_cfg: the config with the budget plan attached, for the method class only.
        record: ``method_cfg`` as plain containers, resolved.
        method: ``method``.
        optimizer: ``optimizer.name``.
        seed: ``seed``.
        hardware: the machine.
        data: where the images are.
        loader: how they are loaded.
        plan: the budget plan.
        checkpoint: the ``checkpoint`` group.
        resume: the resume request.
        loggers: the loggers.
        trainer: the config's keys that ``pl.Trainer`` takes.
        plan_row: the plan table's row name (``{dataset} fraction={fraction}``).
        plan_notes: the lines under the plan table (:func:`budget_notes`).
        allow_late_switches: ``budget.allow_late_switches``.
        baseline: ``baseline`` (None: train the run).
        crop_size: the first crop's size (224 when unset), a ``raw_pixels`` baseline's input.
    """

    method_cfg: DictConfig
    record: dict[str, Any]
    method: str
    optimizer: str
    seed: int
    hardware: Hardware
    data: DataSettings
    loader: LoaderSettings
    plan: BudgetPlan
    checkpoint: CheckpointSettings
    resume: ResumeSettings
    loggers: LoggerSettings
    trainer: dict[str, Any]
    plan_row: str
    plan_notes: tuple[str, ...]
    allow_late_switches: bool
    baseline: str | None
    crop_size: int


def decide_accelerator(requested: str, hint: str) -> str:
    """The accelerator a run trains on: ``auto`` is the GPU when one is visible, else the CPU.

    Args:
        requested: the config's ``accelerator``.
        hint: what to do instead, said after a GPU is asked for and none is visible.

    Raises:
        UserError: a GPU is asked for and none is visible.
    """
    if requested in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"accelerator={requested} but no GPU is visible; {hint}")
    if requested == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return requested


def resolve_hardware(cfg: DictConfig, hint: str) -> Hardware:
    """The run's :class:`Hardware`: the accelerator decided, the world resolved by Lightning."""
    accelerator = decide_accelerator(str(cfg.accelerator), hint)
    devices = trainer_devices(cfg, accelerator)
    num_nodes = int(cfg.get("num_nodes") or 1)
    strategy = cfg.get("strategy")
    world = resolve_world(accelerator, devices, num_nodes, strategy)
    return Hardware(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        world_size=world.size,
        precision=cfg.precision,
        strategy="auto" if strategy in (None, "none") else strategy,
        sync_batchnorm=bool(cfg.get("sync_batchnorm")),
    )


def trainer_keys(cfg: DictConfig) -> dict[str, Any]:
    """The config's keys that ``pl.Trainer`` takes, as upstream passes them through."""
    accepted = set(inspect.signature(pl.Trainer.__init__).parameters)
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return {
        k: v for k, v in container.items() if k in accepted and k not in ("callbacks", "logger")
    }


def data_settings(cfg: DictConfig) -> DataSettings:
    """The run's :class:`DataSettings` (defaults filled by ``resolve_pretrain_cfg``)."""
    data = cfg.data
    return DataSettings(
        dataset=str(data.dataset),
        train_path=str(data.train_path),
        val_path=str(data.val_path) if data.val_path else None,
        format=str(data.format),
        index_seed=int(data.index_seed),
        index_cache=Path(data.index_cache),
        fraction=float(data.fraction),
        stratified=bool(data.stratified),
        no_labels=bool(data.no_labels),
    )


def checkpoint_settings(cfg: DictConfig) -> CheckpointSettings:
    """The ``checkpoint`` group as :class:`CheckpointSettings`."""
    group = cfg.checkpoint
    return CheckpointSettings(
        enabled=bool(group.enabled),
        dir=Path(str(group.dir)),
        frequency=float(group.frequency),
        keep_prev=bool(group.keep_prev),
        every_n_steps=every_n_steps(cfg),
        every_minutes=every_minutes(cfg),
    )


def resume_settings(cfg: DictConfig) -> ResumeSettings:
    """``resume_from_checkpoint`` and ``auto_resume`` as :class:`ResumeSettings`."""
    resume = cfg.get("resume_from_checkpoint")
    return ResumeSettings(
        checkpoint=None if resume is None else str(resume),
        auto=bool(cfg.auto_resume.enabled),
        max_hours=float(cfg.auto_resume.max_hours),
    )


def logger_settings(cfg: DictConfig) -> LoggerSettings:
    """The loggers a config asks for: every run writes them under ``{checkpoint.dir}/logs``."""
    wandb = cfg.wandb
    return LoggerSettings(
        names=tuple(logger_names(cfg)),
        root=Path(str(cfg.checkpoint.dir)) / "logs",
        run_name=str(cfg.name),
        wandb=bool(wandb.enabled),
        wandb_project=str(wandb.project),
        wandb_entity=wandb_entity(wandb.get("entity")),
        wandb_offline=bool(wandb.offline),
    )


def every_n_steps(cfg: DictConfig) -> int:
    """``checkpoint.every_n_steps`` (0 when unset): optimizer steps between step checkpoints."""
    value = OmegaConf.select(cfg, "checkpoint.every_n_steps", default=0)
    value = 0 if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(
            f"checkpoint.every_n_steps must be an integer >= 0 (0 = off), got {value!r}"
        )
    return value


def every_minutes(cfg: DictConfig) -> float:
    """``checkpoint.every_minutes`` (0 when unset): minutes of training between step checkpoints.

    The shipped configs (and :data:`~solo_diversity.config.pretrain.PRETRAIN_DEFAULTS`, for
    solo-learn's YAMLs) say 30. A SIGTERM or SLURM's requeue signal saves at the next step anyway;
    this bounds what a kill without warning (a node failure, SIGKILL, out-of-memory) loses to half
    an hour, whatever the step time. Writing a checkpoint takes seconds even for a ViT-B with its
    optimizer state (about 1 GB), under 0.5% of 30 minutes. Steps would not do: the epoch-counted
    ``frequency`` is 100 epochs, and a step count fit for a ResNet-18 on CIFAR (0.05 s a step) is
    hours for a ViT on ImageNet. A time-based save is one more save at a step boundary, so resumes
    stay exact.
    """
    value = OmegaConf.select(cfg, "checkpoint.every_minutes", default=0)
    value = 0 if value is None else value
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise UserError(f"checkpoint.every_minutes must be a number >= 0 (0 = off), got {value!r}")
    return float(value)


def config_record(cfg: DictConfig) -> dict[str, Any]:
    """A config as plain containers, resolved: what ``args.json`` and the loggers hold."""
    record = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(record, dict)
    return record  # type: ignore[return-value]


def budget_notes(cfg: DictConfig, plan: BudgetPlan) -> list[str]:
    """Lines under the plan table: the config keys the budget replaced, and a recipe's global
    batch that an explicit per-device ``optimizer.batch_size`` overrode.
    """
    notes = []
    wanted = cfg.optimizer.get("global_batch_size")
    if wanted is not None and int(wanted) != plan.global_batch:
        notes.append(
            f"optimizer.batch_size={cfg.optimizer.batch_size} per device (solo-learn's meaning): "
            f"G = {plan.global_batch}, not the recipe's global_batch_size {wanted}"
        )
    max_epochs = cfg.get("max_epochs")
    if max_epochs in (None, -1):
        return notes
    if cfg.budget.get("C") is None and plan.mode == "images":
        return [
            f"budget.C not set: C = max_epochs {max_epochs} x N_ref {plan.N_ref:,} = "
            f"{plan.C:,} images, trained as {plan.steps:,} steps",
            *notes,
        ]
    return [
        f"max_epochs {max_epochs} in the config -> replaced by the budget: "
        f"{plan.steps:,} steps (E = {plan.epochs:,.2f} epochs of N = {plan.N:,})",
        *notes,
    ]


def resolve_run(cfg: DictConfig, sizes: TrainSizes) -> RunConfig:
    """Resolve a checked pretraining config once into a :class:`RunConfig`.

    Args:
        cfg: a config from :func:`~solo_diversity.config.pretrain.resolve_pretrain_cfg`.
        sizes: the opened index's sizes (:func:`data_settings` says which index to open).

    Returns:
        The run: its config with the budget plan attached, and every setting as a typed value.

    Raises:
        UserError: a bad loader or checkpoint key (one line, before anything runs).
    """
    hardware = resolve_hardware(cfg, PRETRAIN_GPU_HINT)
    cfg, plan = attach_plan(
        cfg,
        dataset_size=sizes.dataset_size,
        subset_size=sizes.subset_size,
        num_classes=sizes.num_classes,
        world_size=hardware.world_size,
    )
    baseline = cfg.get("baseline")
    return RunConfig(
        method_cfg=cfg,
        record=config_record(cfg),
        method=str(cfg.method),
        optimizer=str(cfg.optimizer.name),
        seed=int(cfg.seed),
        hardware=hardware,
        data=data_settings(cfg),
        loader=loader_settings(cfg, hardware),
        plan=plan,
        checkpoint=checkpoint_settings(cfg),
        resume=resume_settings(cfg),
        loggers=logger_settings(cfg),
        trainer=trainer_keys(cfg),
        plan_row=f"{cfg.data.dataset} fraction={cfg.data.fraction}",
        plan_notes=tuple(budget_notes(cfg, plan)),
        allow_late_switches=bool(cfg.budget.allow_late_switches),
        baseline=str(baseline) if baseline else None,
        crop_size=int(OmegaConf.select(cfg, "augmentations.0.crop_size", default=None) or 224),
    )
