# SPDX-License-Identifier: MIT
"""The boundary between a solo-learn config and a method: read once into typed, resolved values.

Methods keep solo-learn's ``Cls(cfg)`` signature. Their first act is :func:`method_settings`, which
turns the config into frozen dataclasses with the effective learning rates, the global batch, the
budget plan and every epoch-counted key already converted to optimizer steps. Nothing downstream
reads epochs, and nothing rescales the learning rate a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from solo_diversity.budget.plan import BudgetPlan
from solo_diversity.budget.world import resolve_world
from solo_diversity.errors import UserError
from solo_diversity.methods.optim import OptimizerSettings, SchedulerSettings
from solo_diversity.models.backbones import uses_small_stem


def count_devices(devices: Any, accelerator: str = "auto") -> int:
    """Devices per node as Lightning resolves ``devices`` (an int, -1, "auto", a list or "0,1")."""
    return resolve_world(accelerator, devices).devices


def world_size_of(cfg: DictConfig) -> int:
    """The run's process count: the plan's (set by ``config.attach_plan``) once there is one."""
    plan = cfg.get("budget_plan")
    if plan is not None:
        if plan.get("world_size"):
            return int(plan.world_size)
        # A plan saved before world_size was stored: G / (batch * accumulate) is the same number.
        per_process = int(cfg.optimizer.batch_size) * int(cfg.get("accumulate_grad_batches") or 1)
        return max(1, int(plan.global_batch) // per_process)
    world = resolve_world(
        str(cfg.get("accelerator") or "auto"),
        cfg.get("devices"),
        int(cfg.get("num_nodes") or 1),
        cfg.get("strategy"),
    )
    return world.size


def global_batch(cfg: DictConfig, world_size: int | None = None) -> int:
    """G: images per optimizer step = batch_size * world size * accumulate_grad_batches.

    Args:
        cfg: the run's config.
        world_size: processes in total (devices * num_nodes, as Lightning resolves them); by
            default the plan's once ``budget_plan`` is attached, else resolved from the config.
    """
    world = world_size_of(cfg) if world_size is None else world_size
    return int(cfg.optimizer.batch_size) * world * int(cfg.get("accumulate_grad_batches") or 1)


def lr_scale(cfg: DictConfig) -> float:
    """solo-learn's linear scaling: batch * devices * nodes / 256, times grad accumulation."""
    return global_batch(cfg) / 256


@dataclass(frozen=True)
class MethodSettings:
    """Everything a method needs from the config, resolved."""

    method: str
    backbone: str
    backbone_kwargs: dict[str, Any]
    small_input_stem: bool
    num_classes: int
    num_large_crops: int
    num_small_crops: int
    optimizer: OptimizerSettings
    scheduler: SchedulerSettings
    plan: BudgetPlan
    method_kwargs: dict[str, Any] = field(default_factory=dict)
    channels_last: bool = True
    #: ``performance.compile``: torch.compile the backbone and the projector (see
    #: :meth:`~solo_diversity.methods.base.BaseMethod.configure_model`).
    compile: bool = False
    #: False under ``data.no_labels``: the online classifier sees every target as -1 (unlabelled),
    #: as solo-learn's label-free dataset yields, whatever labels the index stores.
    labelled: bool = True

    @property
    def num_crops(self) -> int:
        """Crops per image: large first, then small."""
        return self.num_large_crops + self.num_small_crops


def plain(node: Any) -> dict[str, Any]:
    """A config node (or None) as a plain dict."""
    if node is None:
        return {}
    if OmegaConf.is_config(node):
        return dict(OmegaConf.to_container(node, resolve=True))  # type: ignore[arg-type]
    return dict(node)


def budget_plan_of(cfg: DictConfig) -> BudgetPlan:
    """The plan that the entry point attached to the config as ``budget_plan``."""
    plan = cfg.get("budget_plan")
    if plan is None:
        raise UserError(
            "the config has no budget_plan; resolve it with "
            "solo_diversity.config.pretrain.attach_plan before building a method"
        )
    return BudgetPlan.from_dict(plain(plan))


def compile_flag(cfg: DictConfig) -> bool:
    """``performance.compile``: true or false (default); any other value is a user error."""
    value = cfg.performance.get("compile", False)
    if not isinstance(value, bool):
        raise UserError(f"performance.compile must be true or false, got {value!r}")
    return value


def method_settings(cfg: DictConfig) -> MethodSettings:
    """Resolve a (defaults-filled) solo-learn config into :class:`MethodSettings`."""
    plan = budget_plan_of(cfg)
    scale = lr_scale(cfg)
    accumulate = int(cfg.get("accumulate_grad_batches") or 1)
    opt = cfg.optimizer
    optimizer = OptimizerSettings(
        name=str(opt.name),
        lr=float(opt.lr) * scale,
        classifier_lr=float(opt.classifier_lr) * scale,
        weight_decay=float(opt.weight_decay),
        exclude_bias_n_norm_wd=bool(opt.get("exclude_bias_n_norm_wd", False)),
        kwargs=plain(opt.get("kwargs")),
    )
    sch = cfg.scheduler
    decay_epochs = list(sch.get("lr_decay_steps") or [])
    scheduler = SchedulerSettings(
        name=str(sch.name),
        total_steps=plan.steps,
        warmup_steps=plan.epochs_to_steps(float(sch.warmup_epochs)),
        warmup_start_lr=float(sch.warmup_start_lr) * accumulate,
        min_lr=float(sch.min_lr) * accumulate,
        lr_decay_steps=tuple(plan.epochs_to_steps(float(e)) for e in decay_epochs),
    )
    stem = cfg.backbone.get("small_input_stem")
    return MethodSettings(
        method=str(cfg.method),
        backbone=str(cfg.backbone.name),
        backbone_kwargs=plain(cfg.backbone.get("kwargs")),
        small_input_stem=uses_small_stem(str(cfg.data.dataset), stem),
        num_classes=max(1, int(cfg.data.num_classes)),
        labelled=not bool(cfg.data.get("no_labels", False)),
        num_large_crops=int(cfg.data.num_large_crops),
        num_small_crops=int(cfg.data.num_small_crops),
        optimizer=optimizer,
        scheduler=scheduler,
        plan=plan,
        method_kwargs=plain(cfg.get("method_kwargs")),
        channels_last=not bool(cfg.performance.get("disable_channel_last", False)),
        compile=compile_flag(cfg),
    )
