# SPDX-License-Identifier: MIT
"""BYOL (Grill et al., arXiv:2006.07733): regress the EMA teacher's projection of the other crop.

``loss = sum_{a in large} sum_{v != a} [2 - 2 cos(p_v, sg(z'_a))]`` with ``p = predictor(
projector(f(x)))`` and ``z'`` the teacher projection (solo-learn sums, it does not average, the
pairs). Config: ``proj_hidden_dim``, ``proj_output_dim``, ``pred_hidden_dim``.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from solo_diversity.methods.base import require_kwargs
from solo_diversity.methods.heads import mlp
from solo_diversity.methods.losses import byol_loss
from solo_diversity.methods.momentum import (
    BaseMomentumMethod,
    PredictorMomentumMethod,
    initialize_momentum_params,
)
from solo_diversity.methods.ranges import POSITIVE_INT, PROJECTOR_RANGES


class BYOL(PredictorMomentumMethod):
    """Student: backbone -> projector (z) -> predictor (p). Teacher: EMA backbone -> projector."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        kw = self.settings.method_kwargs
        hidden, out = int(kw["proj_hidden_dim"]), int(kw["proj_output_dim"])
        self.projector = mlp(self.features_dim, hidden, out, batch_norm=True)
        self.momentum_projector = mlp(self.features_dim, hidden, out, batch_norm=True)
        initialize_momentum_params(self.projector, self.momentum_projector)
        self.predictor = mlp(out, int(kw["pred_hidden_dim"]), out, batch_norm=True)

    CONFIG_RANGES = {
        **BaseMomentumMethod.CONFIG_RANGES,
        **PROJECTOR_RANGES,
        "method_kwargs.pred_hidden_dim": POSITIVE_INT,
    }

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        """Require the projector and predictor sizes."""
        cfg = BaseMomentumMethod.add_and_assert_specific_cfg(cfg)
        require_kwargs(cfg, "byol", ("proj_hidden_dim", "proj_output_dim", "pred_hidden_dim"))
        return cfg

    def forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Adds ``z`` (B, proj_output_dim) and ``p`` (B, proj_output_dim)."""
        out = super().forward(X)
        z = self.projector(out["feats"])
        out.update(z=z, p=self.predictor(z))
        return out

    def multicrop_forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Small crops are predicted too."""
        out = super().multicrop_forward(X)
        z = self.projector(out["feats"])
        out.update(z=z, p=self.predictor(z))
        return out

    @torch.no_grad()
    def momentum_forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Adds the teacher projection ``z`` (B, proj_output_dim)."""
        out = super().momentum_forward(X)
        out["z"] = self.momentum_projector(out["feats"])
        return out

    def training_step(self, batch: list[Any], batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        """BYOL loss summed over (large teacher crop, other student crop) pairs plus classifier."""
        out = super().training_step(batch, batch_idx)
        p, z_teacher = out["p"], out["momentum_z"]
        loss = sum(
            byol_loss(p[v], z_teacher[a])
            for a in range(self.num_large_crops)
            for v in range(self.num_crops)
            if v != a
        )
        self.log("train_neg_cos_sim", loss, on_epoch=True, sync_dist=True)
        return loss + out["loss"]
