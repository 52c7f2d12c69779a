# SPDX-License-Identifier: MIT
"""Barlow Twins (Zbontar et al., arXiv:2103.03230): decorrelate the cross-correlation matrix.

Loss: :func:`~solo_diversity.methods.losses.barlow_loss` on the 3-layer projections of the two
crops. Config: ``proj_hidden_dim``, ``proj_output_dim``, ``lamb`` (0.0051), ``scale_loss`` (0.024).
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from solo_diversity.errors import UserError
from solo_diversity.methods.base import BaseMethod, fill_defaults
from solo_diversity.methods.heads import mlp
from solo_diversity.methods.losses import barlow_loss


class BarlowTwins(BaseMethod):
    """Backbone -> 3-layer projector (Linear-BN-ReLU x2, Linear) -> Barlow Twins loss."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        kw = self.settings.method_kwargs
        self.lamb = float(kw["lamb"])
        self.scale_loss = float(kw["scale_loss"])
        self.projector = mlp(
            self.features_dim,
            int(kw["proj_hidden_dim"]),
            int(kw["proj_output_dim"]),
            num_layers=3,
            batch_norm=True,
        )

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        """Require the projector sizes; default lamb 0.0051 and scale_loss 0.024 (solo-learn)."""
        cfg = BaseMethod.add_and_assert_specific_cfg(cfg)
        for key in ("proj_hidden_dim", "proj_output_dim"):
            if cfg.method_kwargs.get(key) is None:
                raise UserError(f"barlow_twins needs method_kwargs.{key}")
        return fill_defaults(cfg, {"method_kwargs.lamb": 0.0051, "method_kwargs.scale_loss": 0.024})

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
        """Barlow Twins loss of the two large crops plus the classifier loss."""
        out = super().training_step(batch, batch_idx)
        z1, z2 = out["z"][:2]
        loss = barlow_loss(z1, z2, self.lamb, self.scale_loss)
        self.log("train_barlow_loss", loss, on_epoch=True, sync_dist=True)
        return loss + out["loss"]
