# SPDX-License-Identifier: MIT
"""The bridge to upstream solo-learn: its method classes with our budget mixed in.

When the real solo-learn (``import solo``) is importable, :func:`upstream_methods` returns, for
each of our registry keys, a subclass ``(BudgetPlugin, solo's class)``. The plugin keeps
solo-learn's modules, forward and losses, and replaces only what the budget owns:

- the optimizer and the per-step LR schedule come from the resolved settings (LR scaled once,
  warmup converted to steps, S = plan.steps);
- ``current_epoch`` reports the budget position in schedule epochs under the plan's
  ``epoch_keys`` reading (:meth:`~solo_diversity.budget.plan.BudgetPlan.epoch_at_step`: ``step //
  (N // G)`` for ``subset``, ``floor(images seen / N_ref)`` for ``reference``), so every
  epoch-counted rule upstream (DINO's teacher temperature and last-layer freeze, SwAV's queue
  start and prototype freeze) switches at the step the built-in classes' converted keys give;
- ``max_epochs`` is set to the schedule epochs the run reaches, so solo-learn's per-epoch tables
  are long enough;
- the online classifier's rate is scaled by G / 256 like ``optimizer.lr`` (solo-learn scales it
  only when ``data.val_path`` is set), so both backends train it alike;
- ``converted_schedules`` reports the converted keys for the plan table;
- ResNet stems follow our one rule (solo-learn's dataset rule plus our small datasets), so a
  config builds the same network, and checkpoints load, whichever backend is active.

The step budget itself (``max_steps``) and the ledger are Trainer callbacks/arguments, so they
apply to either backend unchanged. Without solo-learn the built-in classes are used.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
from functools import partial
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from solo_diversity.budget.plan import BudgetPlan
from solo_diversity.methods.base import fill_backbone_size, fill_defaults, online_knn
from solo_diversity.methods.optim import (
    build_optimizer,
    build_scheduler,
    optimizer_kwargs_defaults,
)
from solo_diversity.methods.settings import budget_plan_of, method_settings
from solo_diversity.models.backbones import BACKBONES, build_backbone, set_resnet_stem

# registry key -> (solo-learn module, class name)
UPSTREAM_CLASSES: dict[str, tuple[str, str]] = {
    "simclr": ("solo.methods.simclr", "SimCLR"),
    "mocov3": ("solo.methods.mocov3", "MoCoV3"),
    "vicreg": ("solo.methods.vicreg", "VICReg"),
    "dino": ("solo.methods.dino", "DINO"),
    "byol": ("solo.methods.byol", "BYOL"),
    "barlow_twins": ("solo.methods.barlow_twins", "BarlowTwins"),
    "swav": ("solo.methods.swav", "SwAV"),
}

# Epoch-counted method_kwargs of each upstream method, reported in steps in the plan table.
EPOCH_KEYS: dict[str, tuple[str, ...]] = {
    "dino": ("warmup_teacher_temperature_epochs", "freeze_last_layer"),
    "swav": ("epoch_queue_starts", "freeze_prototypes_epochs"),
}


def solo_learn_available() -> bool:
    """True when solo-learn's method package can be imported."""
    try:
        return importlib.util.find_spec("solo.methods") is not None
    except (ImportError, ValueError):
        return False


def solo_learn_version() -> str:
    """The version of the importable solo-learn, however it is installed.

    An installed distribution reports its metadata; a source checkout on ``PYTHONPATH`` (how
    solo-learn is usually used, since its release is not on the package registry) has none, so the
    ``version=`` of the ``setup.py`` beside the package is read. "not installed" without solo-learn.
    """
    if not solo_learn_available():
        return "not installed"
    try:
        return importlib.metadata.version("solo-learn")
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("solo")
    origin = Path(spec.origin) if spec and spec.origin else None
    source = origin.parent.parent if origin else None
    setup = source / "setup.py" if source else None
    if setup and setup.is_file():
        found = re.search(r"version\s*=\s*[\"']([^\"']+)", setup.read_text())
        if found:
            return f"{found.group(1)} (source at {source})"
    return f"unknown version (source at {origin.parent if origin else '?'})"


def backend_name() -> str:
    """``solo-learn`` when the upstream classes are used, else ``built-in``."""
    return "solo-learn" if solo_learn_available() else "built-in"


class BudgetPlugin:
    """Mixin (placed first in the MRO) that puts a solo-learn method on the budget plan."""

    registry_key = ""
    # Set by solo-learn's class, which follows this mixin in the MRO (annotations only).
    backbone: nn.Module
    features_dim: int
    learnable_params: list[dict[str, Any]]

    def __init__(self, cfg: DictConfig):
        plan = budget_plan_of(cfg)
        knn_on = bool(OmegaConf.select(cfg, "knn_eval.enabled", default=False))
        # solo-learn's view of the run; the run's own config (saved as args.json) stays as written.
        theirs = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        OmegaConf.set_struct(theirs, False)
        theirs.max_epochs = plan.schedule_epochs
        theirs.knn_eval.enabled = False  # solo-learn's torchmetrics kNN no longer builds: ours
        super().__init__(theirs)  # type: ignore[call-arg]
        self.settings = method_settings(cfg)
        self.plan = plan
        self.classifier_lr = self.settings.optimizer.classifier_lr  # read by learnable_params
        self._align_stems()
        if knn_on:
            knn = online_knn(cfg, self.features_dim, self.settings)
            self.knn_eval, self.knn = True, _UpstreamKnn(knn)

    def _align_stems(self) -> None:
        """Apply our stem rule to solo-learn's ResNets (it decides by dataset name alone).

        The rule (:func:`~solo_diversity.models.backbones.uses_small_stem`) agrees with solo-learn
        on its own datasets and adds ours, so one config builds one network on either backend. A
        teacher gets the student's new stem weights, as solo-learn initialises it from the student.
        """
        if not self.settings.backbone.startswith("resnet"):
            return
        small = self.settings.small_input_stem
        set_resnet_stem(self.backbone, small)
        teacher = getattr(self, "momentum_backbone", None)
        if teacher is not None:
            set_resnet_stem(teacher, small)
            teacher.conv1.load_state_dict(self.backbone.get_submodule("conv1").state_dict())
            for p in teacher.conv1.parameters():
                p.requires_grad = False

    @classmethod
    def converted_schedules(cls, cfg: DictConfig, plan: BudgetPlan) -> dict[str, int]:
        """The LR warmup and this method's epoch-counted keys, in optimizer steps."""
        out = {"warmup_steps": plan.epochs_to_steps(float(cfg.scheduler.warmup_epochs))}
        for key in EPOCH_KEYS.get(cls.registry_key, ()):
            value = cfg.method_kwargs.get(key)
            if value is not None:
                out[f"{cls.registry_key}_{key}_steps"] = plan.epochs_to_steps(float(value))
        return out

    @property
    def current_epoch(self) -> int:
        """Budget position in schedule epochs of the plan's ``epoch_keys`` reading."""
        trainer = getattr(self, "_trainer", None)
        step = int(trainer.global_step) if trainer is not None else 0
        return self.plan.epoch_at_step(step)

    def configure_optimizers(self) -> Any:
        """Our optimizer over solo-learn's parameter groups, with the per-step budget schedule."""
        optimizer = build_optimizer(self.learnable_params, self.settings.optimizer)
        scheduler = build_scheduler(optimizer, self.settings.scheduler)
        if scheduler is None:
            return optimizer
        return [optimizer], [{"scheduler": scheduler, "interval": "step", "frequency": 1}]


class _UpstreamKnn:
    """Our online kNN behind solo-learn's call interface (``knn(train_features=...,
    train_targets=...)``, ``knn(test_features=..., test_targets=...)``, ``knn.compute()``).

    solo-learn's ``WeightedKNNClassifier`` passes ``compute_on_step`` to torchmetrics, which current
    torchmetrics rejects, so ``knn_eval.enabled=true`` cannot build on the upstream backend as is.
    """

    def __init__(self, knn: Any):
        self.inner = knn

    def __call__(self, **batch: torch.Tensor) -> None:
        if "train_features" in batch:
            self.inner.add_train(batch["train_features"], batch["train_targets"])
        if "test_features" in batch:
            self.inner.add_test(batch["test_features"], batch["test_targets"])

    def compute(self) -> tuple[float, float]:
        return self.inner.compute()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # banks, sizes, settings: as on the built-in classes


def _our_backbone(name: str, method: str, **kwargs: Any) -> Any:
    """solo-learn's backbone factory signature ``f(method, **kwargs)`` over our registry."""
    return build_backbone(name, method=method, **kwargs)


def share_backbones() -> None:
    """Offer solo-learn our backbones that it lacks (e.g. the demo's ``small_cnn``).

    Its base class reads ``num_features`` from any backbone whose name does not start with
    ``resnet``, which ours provide.
    """
    registry = importlib.import_module("solo.methods.base").BaseMethod._BACKBONES
    for name in BACKBONES:
        registry.setdefault(name, partial(_our_backbone, name))


def _upstream_defaults(base: type, cfg: DictConfig) -> DictConfig:
    """solo-learn's defaults for ``base``, the optimizer defaults its ``args/pretrain.py`` fills
    (which this path does not run), then the ViT crop size that solo-learn leaves unset.
    """
    cfg = base.add_and_assert_specific_cfg(cfg)  # type: ignore[attr-defined]
    fill_defaults(cfg, optimizer_kwargs_defaults(str(cfg.optimizer.name)))
    return fill_backbone_size(cfg)


def upstream_methods() -> dict[str, type]:
    """``{key: (BudgetPlugin, solo-learn class)}`` for every key; empty without solo-learn."""
    if not solo_learn_available():
        return {}
    share_backbones()
    out: dict[str, type] = {}
    for key, (module, name) in UPSTREAM_CLASSES.items():
        base = getattr(importlib.import_module(module), name)
        body = {
            "registry_key": key,
            "__module__": __name__,
            "add_and_assert_specific_cfg": staticmethod(partial(_upstream_defaults, base)),
        }
        out[key] = type(name, (BudgetPlugin, base), body)
    return out
