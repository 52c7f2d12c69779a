# SPDX-License-Identifier: MIT
"""The momentum (teacher) base of BYOL, MoCo v3 and DINO: an EMA copy of the student.

:class:`BaseMomentumMethod` adds ``momentum_backbone`` (and, with ``momentum.classifier``, a
``momentum_classifier``) to :class:`~solo_diversity.methods.base.BaseMethod`. The teacher starts
as a copy of the student's weights, never receives gradients, and after every optimizer step k
(k = 1, 2, ...) each pair in ``momentum_pairs`` moves as ``teacher = tau * teacher + (1 - tau) *
student`` with ``tau = cosine_tau(k - 1, S, base_tau, final_tau)`` over the budget's S steps
(BYOL, Grill et al., arXiv:2006.07733). That is solo-learn's ``MomentumUpdater`` with its
``max_steps`` equal to the plan's steps; computing tau from the step (instead of carrying it as
state) makes a resumed run continue on the same curve. Teacher outputs are prefixed ``momentum_``.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from solo_diversity.budget.schedules import cosine_tau
from solo_diversity.errors import UserError
from solo_diversity.methods.base import (
    BaseMethod,
    accuracy_at_k,
    classification_loss,
    fill_defaults,
)
from solo_diversity.methods.ranges import SHARE
from solo_diversity.models.backbones import build_backbone


def initialize_momentum_params(online: nn.Module, momentum: nn.Module) -> None:
    """Copy ``online``'s weights and buffers into ``momentum`` and freeze it.

    The teacher is built as a separate module and filled by ``load_state_dict`` rather than
    ``copy.deepcopy``: deep-copying weight-normalised layers fails under torch 2.14.
    """
    momentum.load_state_dict(online.state_dict())
    for p in momentum.parameters():
        p.requires_grad = False


@torch.no_grad()
def ema_update(online: nn.Module, momentum: nn.Module, tau: float) -> None:
    """``momentum_param = tau * momentum_param + (1 - tau) * online_param`` for every parameter.

    Buffers (BatchNorm statistics) are left alone, as in solo-learn: the teacher keeps its own.
    """
    for op, mp in zip(online.parameters(), momentum.parameters(), strict=True):
        mp.mul_(tau).add_(op.detach(), alpha=1.0 - tau)


def momentum_tau(step: int, total_steps: int, base_tau: float, final_tau: float) -> float:
    """Tau applied by the EMA update that follows optimizer step ``step`` (1-based)."""
    return cosine_tau(step - 1, total_steps, base_tau, final_tau)


class BaseMomentumMethod(BaseMethod):
    """BaseMethod plus an EMA teacher backbone (and optional teacher classifier).

    Config: ``momentum.{base_tau (0.99), final_tau (1.0), classifier (False)}``.
    """

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        s = self.settings
        self.momentum_backbone = build_backbone(
            s.backbone, cifar=s.small_input_stem, method=s.method, **s.backbone_kwargs
        )
        initialize_momentum_params(self.backbone, self.momentum_backbone)
        self.base_tau = float(cfg.momentum.base_tau)
        self.final_tau = float(cfg.momentum.final_tau)
        self.momentum_classifier: nn.Linear | None = (
            nn.Linear(self.features_dim, s.num_classes) if cfg.momentum.classifier else None
        )
        self.cur_tau = self.base_tau
        self.last_step = 0

    CONFIG_RANGES = {"momentum.base_tau": SHARE, "momentum.final_tau": SHARE}

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        """solo-learn's momentum defaults: base_tau 0.99, final_tau 1.0, no teacher classifier."""
        cfg = BaseMethod.add_and_assert_specific_cfg(cfg)
        cfg = fill_defaults(
            cfg,
            {"momentum.base_tau": 0.99, "momentum.final_tau": 1.0, "momentum.classifier": False},
        )
        for key in ("base_tau", "final_tau"):
            value = float(cfg.momentum[key])
            if not 0.0 <= value <= 1.0:
                raise UserError(f"momentum.{key}={value} must be in [0, 1]")
        return cfg

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        """Base groups plus the teacher classifier (trained on teacher features, no decay)."""
        groups = super().learnable_params
        if self.momentum_classifier is not None:
            groups.append(
                {
                    "name": "momentum_classifier",
                    "params": self.momentum_classifier.parameters(),
                    "lr": self.settings.optimizer.classifier_lr,
                    "weight_decay": 0.0,
                }
            )
        return groups

    @property
    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(student, teacher) module pairs moved by the EMA; subclasses append their heads."""
        return [(self.backbone, self.momentum_backbone)]

    @torch.no_grad()
    def momentum_forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Teacher features of a large crop: (B, 3, H, W) -> {"feats": (B, F)}."""
        return {"feats": self.momentum_backbone(self._to_memory_format(X))}

    def _shared_step_momentum(self, X: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        out = self.momentum_forward(X)
        if self.momentum_classifier is not None:
            logits = self.momentum_classifier(out["feats"].detach())
            acc1, acc5 = accuracy_at_k(logits, targets, (1, min(5, logits.size(1))))
            out.update(
                logits=logits, loss=classification_loss(logits, targets), acc1=acc1, acc5=acc5
            )
        return out

    def training_step(self, batch: list[Any], batch_idx: int) -> dict[str, Any]:
        """Base outputs plus ``momentum_<key>`` lists for the large crops through the teacher."""
        outs = super().training_step(batch, batch_idx)
        _, X, targets = batch
        X = [X] if isinstance(X, torch.Tensor) else X  # noqa: N806
        teacher = [self._shared_step_momentum(x, targets) for x in X[: self.num_large_crops]]
        momentum_outs: dict[str, Any] = {
            f"momentum_{k}": [o[k] for o in teacher] for k in teacher[0]
        }
        if self.momentum_classifier is not None:
            for k in ("loss", "acc1", "acc5"):
                momentum_outs[f"momentum_{k}"] = (
                    sum(momentum_outs[f"momentum_{k}"]) / self.num_large_crops
                )
            self.log_dict(
                {
                    "train_momentum_class_loss": momentum_outs["momentum_loss"],
                    "train_momentum_acc1": momentum_outs["momentum_acc1"],
                    "train_momentum_acc5": momentum_outs["momentum_acc5"],
                },
                on_epoch=True,
                sync_dist=True,
            )
            outs["loss"] = outs["loss"] + momentum_outs["momentum_loss"]
        outs.update(momentum_outs)
        return outs

    def momentum_update(self, step: int) -> float:
        """Apply the EMA that follows optimizer step ``step`` (1-based) to every pair.

        Returns:
            The tau that was used.
        """
        tau = momentum_tau(step, self.plan.steps, self.base_tau, self.final_tau)
        for online, momentum in self.momentum_pairs:
            ema_update(online, momentum, tau)
        self.cur_tau = tau
        return tau

    def on_train_start(self) -> None:
        """Start counting from the trainer's step (non-zero after a resume)."""
        self.last_step = int(self.trainer.global_step)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Move the teacher once per optimizer step (not per accumulated micro-batch)."""
        step = int(self.trainer.global_step)
        if step > self.last_step:
            tau = self.momentum_update(step)
            self.log("tau", tau)
        self.last_step = step

    def validation_step(self, batch: list[Any], batch_idx: int) -> dict[str, Any]:
        """Base validation plus the teacher classifier's metrics when it exists."""
        out = super().validation_step(batch, batch_idx)
        if self.momentum_classifier is not None:
            X, targets = batch  # noqa: N806
            m = self._shared_step_momentum(X, targets)
            self.log_dict(
                {
                    "momentum_val_loss": m["loss"],
                    "momentum_val_acc1": m["acc1"],
                    "momentum_val_acc5": m["acc5"],
                },
                on_epoch=True,
                sync_dist=True,
                batch_size=X.size(0),
            )
        return out


class PredictorMomentumMethod(BaseMomentumMethod):
    """Student projector + predictor, teacher projector following the EMA (BYOL, MoCo v3).

    Subclasses assign ``projector``, ``momentum_projector`` (initialised from it) and
    ``predictor``; this class trains the student heads and moves the teacher projector.
    """

    projector: nn.Module
    momentum_projector: nn.Module
    predictor: nn.Module

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        """Base groups plus projector and predictor."""
        return super().learnable_params + [
            {"name": "projector", "params": self.projector.parameters()},
            {"name": "predictor", "params": self.predictor.parameters()},
        ]

    @property
    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """Backbone and projector follow the EMA."""
        return super().momentum_pairs + [(self.projector, self.momentum_projector)]
