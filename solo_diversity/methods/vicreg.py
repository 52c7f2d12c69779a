# SPDX-License-Identifier: MIT
"""VICReg (Bardes, Ponce and LeCun, arXiv:2105.04906): invariance, variance and covariance terms.

Loss: :func:`~solo_diversity.methods.losses.vicreg_loss` on the 3-layer projections of the two
crops. Config: ``proj_hidden_dim``, ``proj_output_dim``, ``sim_loss_weight`` (25),
``var_loss_weight`` (25), ``cov_loss_weight`` (1).
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from solo_diversity.errors import UserError
from solo_diversity.methods.base import BaseMethod, fill_defaults
from solo_diversity.methods.heads import mlp
from solo_diversity.methods.losses import vicreg_loss


class VICReg(BaseMethod):
    """Backbone -> 3-layer projector (Linear-BN-ReLU x2, Linear) -> VICReg loss."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        kw = self.settings.method_kwargs
        self.sim_loss_weight = float(kw["sim_loss_weight"])
        self.var_loss_weight = float(kw["var_loss_weight"])
        self.cov_loss_weight = float(kw["cov_loss_weight"])
        self.projector = mlp(
            self.features_dim,
            int(kw["proj_hidden_dim"]),
            int(kw["proj_output_dim"]),
            num_layers=3,
            batch_norm=True,
        )

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        """Require the projector sizes; default the loss weights to 25 / 25 / 1."""
        cfg = BaseMethod.add_and_assert_specific_cfg(cfg)
        for key in ("proj_hidden_dim", "proj_output_dim"):
            if cfg.method_kwargs.get(key) is None:
                raise UserError(f"vicreg needs method_kwargs.{key}")
        return fill_defaults(
            cfg,
            {
                "method_kwargs.sim_loss_weight": 25.0,
                "method_kwargs.var_loss_weight": 25.0,
                "method_kwargs.cov_loss_weight": 1.0,
            },
        )

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

    def training_step(self, batch: list[Any], batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        """VICReg loss of the two large crops plus the classifier loss."""
        out = super().training_step(batch, batch_idx)
        z1, z2 = out["z"][:2]
        loss = vicreg_loss(z1, z2, self.sim_loss_weight, self.var_loss_weight, self.cov_loss_weight)
        self.log("train_vicreg_loss", loss, on_epoch=True, sync_dist=True)
        return loss + out["loss"]
