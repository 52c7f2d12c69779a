# SPDX-License-Identifier: MIT
"""DINO (Caron et al., arXiv:2104.14294): self-distillation with a centred, sharpened EMA teacher.

The student head scores every crop, the teacher head the large crops; the loss is
:func:`~solo_diversity.methods.losses.make_dino_loss` at the teacher temperature of the current
step. Config (solo-learn's names and defaults): ``proj_hidden_dim``, ``proj_output_dim``,
``num_prototypes``, ``use_bn_in_head`` (False), ``norm_last_layer`` (True), ``clip_grad`` (0),
``freeze_last_layer`` (1), ``student_temperature`` (0.1), ``teacher_temperature`` (0.07),
``warmup_teacher_temperature`` (0.04), ``warmup_teacher_temperature_epochs`` (0). The two
epoch-counted keys are converted to optimizer steps by the budget plan, under its
``epoch_keys`` reading (epochs of the subset by default, as solo-learn counts them).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from omegaconf import DictConfig
from torch import nn

from solo_diversity.budget.plan import BudgetPlan
from solo_diversity.methods.base import fill_defaults, require_kwargs
from solo_diversity.methods.losses import make_dino_loss, teacher_temperature
from solo_diversity.methods.momentum import BaseMomentumMethod, initialize_momentum_params
from solo_diversity.methods.ranges import NON_NEGATIVE, POSITIVE, POSITIVE_INT, PROJECTOR_RANGES


class WeightNormLinear(nn.Module):
    """Bias-free linear layer with weight normalisation ``W = g * V / ||V||`` (row-wise).

    Written out instead of ``nn.utils.weight_norm`` (deprecated, and its modules cannot be
    deep-copied under torch 2.14) while keeping its parameter names ``weight_g`` (out, 1) and
    ``weight_v`` (out, in), so state_dicts match solo-learn's. ``g`` starts at 1; with
    ``fix_norm`` it is frozen and every row of W has unit norm.
    """

    def __init__(self, in_dim: int, out_dim: int, *, fix_norm: bool = True):
        super().__init__()
        v = torch.empty(out_dim, in_dim)
        nn.init.kaiming_uniform_(v, a=5**0.5)  # nn.Linear's default initialisation
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(torch.ones(out_dim, 1), requires_grad=not fix_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) -> (B, out_dim)."""
        weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=1, keepdim=True)
        return F.linear(x, weight)


class DINOHead(nn.Module):
    """MLP (Linear [BN] GELU x2, Linear) -> L2 normalisation -> weight-normalised prototypes.

    Hand-written rather than lightly's ``DINOProjectionHead`` so the state_dict keys are
    solo-learn's (``mlp.*``, ``last_layer.weight_g/weight_v``); the maths is the same.
    """

    def __init__(
        self,
        in_dim: int,
        num_prototypes: int,
        *,
        use_bn: bool = False,
        norm_last_layer: bool = True,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        for d_in in (in_dim, hidden_dim):
            layers.append(nn.Linear(d_in, hidden_dim))
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.GELU())
        layers.append(nn.Linear(hidden_dim, bottleneck_dim))
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = WeightNormLinear(bottleneck_dim, num_prototypes, fix_norm=norm_last_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) features -> (B, num_prototypes) logits."""
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))


class DINO(BaseMomentumMethod):
    """Student backbone + ``head``; EMA teacher backbone + ``momentum_head``."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        kw = self.settings.method_kwargs
        self.clip_grad = float(kw["clip_grad"])
        steps = self.converted_schedules(cfg, self.plan)
        self.freeze_last_layer_steps = steps["dino_freeze_last_layer_steps"]
        self.warmup_teacher_temperature_steps = steps["dino_teacher_temp_warmup_steps"]
        self.teacher_temperature = float(kw["teacher_temperature"])
        self.warmup_teacher_temperature = float(kw["warmup_teacher_temperature"])

        def head() -> DINOHead:
            return DINOHead(
                self.features_dim,
                int(kw["num_prototypes"]),
                use_bn=bool(kw["use_bn_in_head"]),
                norm_last_layer=bool(kw["norm_last_layer"]),
                hidden_dim=int(kw["proj_hidden_dim"]),
                bottleneck_dim=int(kw["proj_output_dim"]),
            )

        self.head = head()
        self.momentum_head = head()  # built separately, then filled (no deepcopy)
        initialize_momentum_params(self.head, self.momentum_head)
        self.dino_loss_func = make_dino_loss(
            int(kw["num_prototypes"]), float(kw["student_temperature"]), self.teacher_temperature
        )

    CONFIG_RANGES = {
        **BaseMomentumMethod.CONFIG_RANGES,
        **PROJECTOR_RANGES,
        "method_kwargs.num_prototypes": POSITIVE_INT,
        "method_kwargs.clip_grad": NON_NEGATIVE,
        "method_kwargs.freeze_last_layer": NON_NEGATIVE,
        "method_kwargs.student_temperature": POSITIVE,
        "method_kwargs.teacher_temperature": POSITIVE,
        "method_kwargs.warmup_teacher_temperature": NON_NEGATIVE,
        "method_kwargs.warmup_teacher_temperature_epochs": NON_NEGATIVE,
    }

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        """Require the head sizes; fill solo-learn's DINO defaults."""
        cfg = BaseMomentumMethod.add_and_assert_specific_cfg(cfg)
        require_kwargs(cfg, "dino", ("proj_hidden_dim", "proj_output_dim", "num_prototypes"))
        return fill_defaults(
            cfg,
            {
                "method_kwargs.clip_grad": 0,
                "method_kwargs.freeze_last_layer": 1,
                "method_kwargs.norm_last_layer": True,
                "method_kwargs.use_bn_in_head": False,
                "method_kwargs.student_temperature": 0.1,
                "method_kwargs.teacher_temperature": 0.07,
                "method_kwargs.warmup_teacher_temperature": 0.04,
                "method_kwargs.warmup_teacher_temperature_epochs": 0,
            },
        )

    @staticmethod
    def converted_schedules(cfg: DictConfig, plan: BudgetPlan) -> dict[str, int]:
        """Adds the teacher-temperature warmup and the last-layer freeze, in optimizer steps."""
        kw = cfg.method_kwargs
        return {
            **BaseMomentumMethod.converted_schedules(cfg, plan),
            "dino_teacher_temp_warmup_steps": plan.epochs_to_steps(
                float(kw.warmup_teacher_temperature_epochs)
            ),
            "dino_freeze_last_layer_steps": plan.epochs_to_steps(float(kw.freeze_last_layer)),
        }

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        """Base groups plus the student head."""
        return super().learnable_params + [{"name": "head", "params": self.head.parameters()}]

    @property
    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """Backbone and head follow the EMA."""
        return super().momentum_pairs + [(self.head, self.momentum_head)]

    def teacher_temperature_at(self, step: int) -> float:
        """The teacher temperature after ``step`` optimizer steps."""
        return teacher_temperature(
            step,
            self.warmup_teacher_temperature_steps,
            self.warmup_teacher_temperature,
            self.teacher_temperature,
        )

    def last_layer_frozen(self, step: int) -> bool:
        """Whether the prototypes get no update at optimizer step ``step`` (0-based)."""
        return step < self.freeze_last_layer_steps

    def forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Adds the student logits ``z`` (B, num_prototypes)."""
        out = super().forward(X)
        out["z"] = self.head(out["feats"])
        return out

    def multicrop_forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Small crops go through the student head too."""
        out = super().multicrop_forward(X)
        out["z"] = self.head(out["feats"])
        return out

    @torch.no_grad()
    def momentum_forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Adds the teacher logits ``z`` (B, num_prototypes)."""
        out = super().momentum_forward(X)
        out["z"] = self.momentum_head(out["feats"])
        return out

    def training_step(self, batch: list[Any], batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        """DINO loss (teacher large crops vs student crops) plus the classifier loss."""
        out = super().training_step(batch, batch_idx)
        temp = self.teacher_temperature_at(int(self.global_step))
        student = [z.float() for z in out["z"]]
        teacher = [z.float() for z in out["momentum_z"]]
        loss = self.dino_loss_func(teacher_out=teacher, student_out=student, teacher_temp=temp)
        self.log_dict(
            {"dino_loss": loss, "dino_teacher_temperature": temp}, on_epoch=True, sync_dist=True
        )
        return loss + out["loss"]

    def on_after_backward(self) -> None:
        """Per-parameter gradient clipping of the backbone; no prototype update while frozen."""
        if self.clip_grad:
            for p in self.backbone.parameters():
                if p.grad is not None:
                    scale = self.clip_grad / (p.grad.norm(2) + 1e-6)
                    if scale < 1:
                        p.grad.mul_(scale)
        if self.last_layer_frozen(int(self.global_step)):
            for p in self.head.last_layer.parameters():
                p.grad = None
