# SPDX-License-Identifier: MIT
"""Barlow Twins (Zbontar et al., arXiv:2103.03230): decorrelate the cross-correlation matrix.

Loss: :func:`~solo_diversity.methods.losses.barlow_loss` on the 3-layer projections of the two
crops. Config: ``proj_hidden_dim``, ``proj_output_dim``, ``lamb`` (0.0051), ``scale_loss`` (0.024).
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from solo_diversity.methods.base import BaseMethod, ProjectedMethod, fill_defaults, require_kwargs
from solo_diversity.methods.heads import mlp
from solo_diversity.methods.losses import barlow_loss
from solo_diversity.methods.ranges import NON_NEGATIVE, PROJECTOR_RANGES


class BarlowTwins(ProjectedMethod):
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

    CONFIG_RANGES = {
        **PROJECTOR_RANGES,
        "method_kwargs.lamb": NON_NEGATIVE,
        "method_kwargs.scale_loss": NON_NEGATIVE,
    }

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        """Require the projector sizes; default lamb 0.0051 and scale_loss 0.024 (solo-learn)."""
        cfg = BaseMethod.add_and_assert_specific_cfg(cfg)
        require_kwargs(cfg, "barlow_twins", ("proj_hidden_dim", "proj_output_dim"))
        return fill_defaults(cfg, {"method_kwargs.lamb": 0.0051, "method_kwargs.scale_loss": 0.024})

    def training_step(self, batch: list[Any], batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        """Barlow Twins loss of the two large crops plus the classifier loss."""
        out = super().training_step(batch, batch_idx)
        z1, z2 = out["z"][:2]
        loss = barlow_loss(z1, z2, self.lamb, self.scale_loss)
        self.log("train_barlow_loss", loss, on_epoch=True, sync_dist=True)
        return loss + out["loss"]
