# SPDX-License-Identifier: MIT
"""The solo-learn-compatible base of every method: backbone, online classifier, optimizer, schedule.

A method subclasses :class:`BaseMethod`, adds its heads, extends ``learnable_params`` and computes
its SSL loss in ``training_step`` on top of what the base returns. The names (``backbone``,
``classifier``), the batch format ``[indexes, [crops], targets]``, the forward dict
(``logits``, ``feats``) and the static ``add_and_assert_specific_cfg`` chain are solo-learn's, so
configs and checkpoints carry over. Unlike solo-learn, the schedule length comes from the budget
plan (exact optimizer steps), not from ``max_epochs``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

import lightning.pytorch as pl
import torch
import torch.nn.functional as F  # noqa: N812
from omegaconf import DictConfig, OmegaConf
from torch import nn

from solo_diversity.budget.plan import BudgetPlan
from solo_diversity.errors import UserError
from solo_diversity.methods.knn import DISTANCES, OnlineKNN
from solo_diversity.methods.optim import build_optimizer, build_scheduler, optimizer_kwargs_defaults
from solo_diversity.methods.ranges import Number
from solo_diversity.methods.settings import MethodSettings, method_settings, plain, world_size_of
from solo_diversity.models.backbones import backbone_kwargs_for, build_backbone

# The modules ``performance.compile`` compiles: the backbone and the projector (DINO's is ``head``).
COMPILED_MODULES = ("backbone", "projector", "head")


def _default(cfg: DictConfig, key: str, value: Any) -> None:
    """Set dotted ``key`` to ``value`` when the config lacks it (solo-learn's defaults)."""
    if OmegaConf.select(cfg, key, default=None) is None:
        OmegaConf.update(cfg, key, value, force_add=True)


def fill_defaults(cfg: DictConfig, defaults: dict[str, Any]) -> DictConfig:
    """Fill missing dotted keys of ``cfg`` in place from ``defaults`` and return it."""
    for key, value in defaults.items():
        _default(cfg, key, value)
    return cfg


def fill_backbone_size(cfg: DictConfig) -> DictConfig:
    """Give size-dependent backbones (ViTs) the run's crop size, unless the config sets one."""
    crop = OmegaConf.select(cfg, "augmentations.0.crop_size", default=None)
    if crop is not None and OmegaConf.select(cfg, "backbone.name", default=None) is not None:
        kwargs = plain(cfg.backbone.get("kwargs"))
        cfg.backbone.kwargs = backbone_kwargs_for(str(cfg.backbone.name), kwargs, int(crop))
    return cfg


def require_kwargs(cfg: DictConfig, method: str, keys: tuple[str, ...]) -> None:
    """Fail with a one-line message when a required ``method_kwargs`` key is missing."""
    for key in keys:
        if cfg.method_kwargs.get(key) is None:
            raise UserError(f"{method} needs method_kwargs.{key}")


def accuracy_at_k(
    logits: torch.Tensor, targets: torch.Tensor, ks: tuple[int, ...]
) -> list[torch.Tensor]:
    """Top-k accuracies in percent over the labelled samples (targets != -1).

    Args:
        logits: (B, num_classes).
        targets: (B,), -1 for unlabelled samples.
        ks: the k values.

    Returns:
        One scalar tensor per k (0 when nothing is labelled).
    """
    # Masked sums instead of indexing by the mask: no step waits for the GPU to count labels.
    mask = targets != -1
    labelled = mask.sum().clamp(min=1)
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top.eq(targets[:, None]) & mask[:, None]  # a -1 target never hits
    return [hits[:, :k].any(dim=1).float().sum() / labelled * 100 for k in ks]


def classification_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy ignoring -1 targets; 0 (not NaN) when a batch has no labels.

    The sum over the labelled samples divided by their count (at least 1) equals the mean
    reduction bit for bit and needs no host-side test for an all-unlabelled batch.
    """
    labelled = (targets != -1).sum().clamp(min=1)
    total = F.cross_entropy(logits.float(), targets, ignore_index=-1, reduction="sum")
    return total / labelled


def online_knn(cfg: DictConfig, feature_dim: int, settings: MethodSettings) -> OnlineKNN | None:
    """solo-learn's online kNN (``knn_eval.{enabled,k,distance_func}``), None when disabled.

    The training bank keeps ``knn_eval.max_train_features`` rows per rank (an addition; default:
    one epoch of large crops of this rank's share of the subset, the bank solo-learn holds when it
    validates once per epoch), because this run validates a fixed number of times per budget.
    """
    knn = cfg.get("knn_eval") or {}
    if not knn.get("enabled", False):
        return None
    world = world_size_of(cfg)
    distance = str(knn.get("distance_func", "euclidean"))
    if distance not in DISTANCES:
        raise UserError(
            f"knn_eval.distance_func={distance!r} is unknown; choose one of {', '.join(DISTANCES)}"
        )
    capacity = knn.get("max_train_features") or (
        -(-settings.plan.N // world) * settings.num_large_crops
    )
    return OnlineKNN(
        feature_dim,
        max(1, settings.num_classes),
        int(capacity),
        k=int(knn.get("k", 20)),
        distance=distance,
    )


class BaseMethod(pl.LightningModule):
    """Backbone + online linear classifier on detached features + budgeted optimizer and schedule.

    Args:
        cfg: a solo-learn config whose defaults were filled and to which the budget plan was
            attached (see :mod:`solo_diversity.config.pretrain`).
    """

    def __init__(self, cfg: DictConfig):
        super().__init__()
        self.cfg = cfg
        self.settings = method_settings(cfg)
        s = self.settings
        self.backbone = build_backbone(
            s.backbone, cifar=s.small_input_stem, method=s.method, **s.backbone_kwargs
        )
        self.features_dim: int = int(self.backbone.num_features)  # type: ignore[arg-type]
        self.classifier = nn.Linear(self.features_dim, s.num_classes)
        self.num_large_crops = s.num_large_crops
        self.num_small_crops = s.num_small_crops
        self.num_crops = s.num_crops
        self.multicrop = s.num_small_crops > 0
        self.plan = s.plan
        self.knn = online_knn(cfg, self.features_dim, s)

    # Dotted key -> the values it accepts, for the method's own keys (config.keys checks them).
    CONFIG_RANGES: ClassVar[dict[str, Number]] = {}

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        """Fill solo-learn's defaults for the keys every method reads.

        Size-dependent backbones (ViTs) get ``backbone.kwargs.img_size`` = the large crop size, so
        the stored config rebuilds the same network for the probe.
        """
        cfg = fill_defaults(
            cfg,
            {
                "backbone.kwargs": {},
                "optimizer.exclude_bias_n_norm_wd": False,
                "optimizer.kwargs": {},
                "accumulate_grad_batches": 1,
                "scheduler.name": "warmup_cosine",
                "scheduler.lr_decay_steps": [],
                "scheduler.min_lr": 0.0,
                "scheduler.warmup_start_lr": 3e-5,
                "scheduler.warmup_epochs": 10,
                "scheduler.interval": "step",
                "knn_eval.enabled": False,
                "knn_eval.k": 20,
                "knn_eval.distance_func": "euclidean",
                "performance.disable_channel_last": False,
                "performance.compile": False,
                "method_kwargs": {},
            },
        )
        fill_defaults(cfg, optimizer_kwargs_defaults(str(cfg.optimizer.name)))
        return fill_backbone_size(cfg)

    @staticmethod
    def converted_schedules(cfg: DictConfig, plan: BudgetPlan) -> dict[str, int]:
        """Every epoch-counted key of this method in optimizer steps of ``plan`` (plan table).

        Subclasses with their own epoch-counted keys extend the dict.
        """
        return {"warmup_steps": plan.epochs_to_steps(float(cfg.scheduler.warmup_epochs))}

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        """Parameter groups: the backbone, and the classifier at its own rate without decay."""
        return [
            {"name": "backbone", "params": self.backbone.parameters()},
            {
                "name": "classifier",
                "params": self.classifier.parameters(),
                "lr": self.settings.optimizer.classifier_lr,
                "weight_decay": 0.0,
            },
        ]

    def configure_model(self) -> None:
        """Under ``performance.compile``, torch.compile the backbone and the projector in place.

        ``nn.Module.compile`` compiles the module's call and leaves the module where it is, so
        the state-dict keys stay those of an eager run (no ``_orig_mod.`` prefix) and
        checkpoints load either way. The classifier and momentum copies stay eager: they are
        small or not trained. Lightning calls this once the trainer is set up, after every
        subclass has built its heads.
        """
        if not self.settings.compile:
            return
        for name in COMPILED_MODULES:
            module = getattr(self, name, None)
            if isinstance(module, nn.Module):
                module.compile()

    def configure_optimizers(self) -> Any:
        """The optimizer and a per-step schedule over the plan's S steps."""
        optimizer = build_optimizer(self.learnable_params, self.settings.optimizer)
        scheduler = build_scheduler(optimizer, self.settings.scheduler)
        if scheduler is None:
            return optimizer
        return [optimizer], [{"scheduler": scheduler, "interval": "step", "frequency": 1}]

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Any) -> None:
        """Setting grads to None is cheaper than zeroing them."""
        optimizer.zero_grad(set_to_none=True)

    def _to_memory_format(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(memory_format=torch.channels_last) if self.settings.channels_last else x

    def forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803 - solo-learn's name
        """(B, 3, H, W) -> {"feats": (B, F), "logits": (B, num_classes)}."""
        feats = self.backbone(self._to_memory_format(X))
        return {"logits": self.classifier(feats.detach()), "feats": feats}

    def multicrop_forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Small crops only go through the backbone: {"feats": (B, F)}."""
        return {"feats": self.backbone(self._to_memory_format(X))}

    def _base_shared_step(self, X: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        out = self(X)
        acc1, acc5 = accuracy_at_k(out["logits"], targets, (1, min(5, out["logits"].size(1))))
        out.update(loss=classification_loss(out["logits"], targets), acc1=acc1, acc5=acc5)
        return out

    def base_training_step(self, X: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Forward one large crop and score the online classifier on it."""
        return self._base_shared_step(X, targets)

    def training_step(self, batch: list[Any], batch_idx: int) -> dict[str, Any]:
        """Forward every crop; returns lists per key (large crops first) and the classifier loss.

        Subclasses call this, add their SSL loss to ``out["loss"]`` and return the sum.
        """
        _, X, targets = batch
        if not self.settings.labelled:
            targets = torch.full_like(targets, -1)
        X = [X] if isinstance(X, torch.Tensor) else X  # noqa: N806
        if len(X) != self.num_crops:
            raise ValueError(f"expected {self.num_crops} crops per image, the batch has {len(X)}")
        outs_large = [self.base_training_step(x, targets) for x in X[: self.num_large_crops]]
        outs: dict[str, Any] = {k: [o[k] for o in outs_large] for k in outs_large[0]}
        for small in (self.multicrop_forward(x) for x in X[self.num_large_crops :]):
            for k, v in small.items():
                outs.setdefault(k, []).append(v)
        for k in ("loss", "acc1", "acc5"):
            outs[k] = sum(outs[k]) / self.num_large_crops
        if self.knn is not None:  # solo-learn's bank: every large crop of the labelled images
            self.knn.add_train(
                torch.cat(outs["feats"][: self.num_large_crops]),
                targets.repeat(self.num_large_crops),
            )
        self.log_dict(
            {
                "train_class_loss": outs["loss"],
                "train_acc1": outs["acc1"],
                "train_acc5": outs["acc5"],
            },
            on_epoch=True,
            sync_dist=True,
        )
        return outs

    def validation_step(self, batch: list[Any], batch_idx: int) -> dict[str, Any]:
        """Score the online classifier on a validation batch ``(X, Y)``."""
        X, targets = batch  # noqa: N806
        out = self._base_shared_step(X, targets)
        self.log_dict(
            {"val_loss": out["loss"], "val_acc1": out["acc1"], "val_acc5": out["acc5"]},
            on_epoch=True,
            sync_dist=True,
            batch_size=X.size(0),
        )
        if self.knn is not None and not self.trainer.sanity_checking:
            self.knn.add_test(out["feats"], targets)
        return out

    def on_validation_epoch_end(self) -> None:
        """Score the kNN bank (every rank takes part) and log ``val_knn_acc1``/``val_knn_acc5``."""
        if self.knn is not None and not self.trainer.sanity_checking:
            acc1, acc5 = self.knn.compute(device=self.device)
            self.log_dict({"val_knn_acc1": acc1, "val_knn_acc5": acc5}, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the resolved run next to the weights: plan, effective LRs, converted schedules."""
        resolved = asdict(self.settings)
        resolved["plan"] = self.plan.as_dict()
        checkpoint["solo_diversity"] = {
            "resolved": resolved,
            "cfg": OmegaConf.to_container(self.cfg, resolve=True),
        }


class ProjectedMethod(BaseMethod):
    """A method whose loss works on ``z = projector(feats)`` of every crop (SimCLR, VICReg, ...).

    Subclasses assign ``self.projector``; this class trains it and adds ``z`` to both forwards.
    """

    projector: nn.Module

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        """Base groups plus the projector."""
        return super().learnable_params + [
            {"name": "projector", "params": self.projector.parameters()}
        ]

    def forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Adds the projection ``z`` (B, proj_output_dim)."""
        out = super().forward(X)
        out["z"] = self.projector(out["feats"])
        return out

    def multicrop_forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Small crops are projected too."""
        out = super().multicrop_forward(X)
        out["z"] = self.projector(out["feats"])
        return out
