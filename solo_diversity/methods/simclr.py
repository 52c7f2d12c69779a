# SPDX-License-Identifier: MIT
"""SimCLR (Chen et al., arXiv:2002.05709): contrast crops of the same image against the batch.

Config (solo-learn's ``method_kwargs``): ``proj_hidden_dim``, ``proj_output_dim``, ``temperature``.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from solo_diversity.errors import UserError
from solo_diversity.methods.base import BaseMethod
from solo_diversity.methods.heads import mlp
from solo_diversity.methods.losses import simclr_loss


class SimCLR(BaseMethod):
    """Backbone -> 2-layer projector -> NT-Xent with index-based positives."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        kw = self.settings.method_kwargs
        self.temperature = float(kw["temperature"])
        self.projector = mlp(
            self.features_dim, int(kw["proj_hidden_dim"]), int(kw["proj_output_dim"])
        )

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        """Require the projector sizes and the temperature."""
        cfg = BaseMethod.add_and_assert_specific_cfg(cfg)
        for key in ("proj_hidden_dim", "proj_output_dim", "temperature"):
            if cfg.method_kwargs.get(key) is None:
                raise UserError(f"simclr needs method_kwargs.{key}")
        return cfg

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        """Base groups plus the projector."""
        return super().learnable_params + [
            {"name": "projector", "params": self.projector.parameters()}
        ]

    def forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Adds the projection ``z`` to the base outputs."""
        out = super().forward(X)
        out["z"] = self.projector(out["feats"])
        return out

    def multicrop_forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Small crops are projected too: every crop takes part in the contrast."""
        out = super().multicrop_forward(X)
        out["z"] = self.projector(out["feats"])
        return out

    def training_step(self, batch: list[Any], batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        """NT-Xent over all crops plus the online classifier loss."""
        indexes = batch[0]
        out = super().training_step(batch, batch_idx)
        z = torch.cat(out["z"])
        nce = simclr_loss(z, indexes.repeat(self.num_crops), self.temperature)
        self.log("train_nce_loss", nce, on_epoch=True, sync_dist=True)
        return nce + out["loss"]
