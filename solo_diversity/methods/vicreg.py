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

from solo_diversity.methods.base import BaseMethod, ProjectedMethod, fill_defaults, require_kwargs
from solo_diversity.methods.heads import mlp
from solo_diversity.methods.losses import vicreg_loss
from solo_diversity.methods.ranges import NON_NEGATIVE, PROJECTOR_RANGES


class VICReg(ProjectedMethod):
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

    CONFIG_RANGES = {
        **PROJECTOR_RANGES,
        "method_kwargs.sim_loss_weight": NON_NEGATIVE,
        "method_kwargs.var_loss_weight": NON_NEGATIVE,
        "method_kwargs.cov_loss_weight": NON_NEGATIVE,
    }

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        """Require the projector sizes; default the loss weights to 25 / 25 / 1."""
        cfg = BaseMethod.add_and_assert_specific_cfg(cfg)
        require_kwargs(cfg, "vicreg", ("proj_hidden_dim", "proj_output_dim"))
        return fill_defaults(
            cfg,
            {
                "method_kwargs.sim_loss_weight": 25.0,
                "method_kwargs.var_loss_weight": 25.0,
                "method_kwargs.cov_loss_weight": 1.0,
            },
        )

    def training_step(self, batch: list[Any], batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        """VICReg loss of the two large crops plus the classifier loss."""
        out = super().training_step(batch, batch_idx)
        z1, z2 = out["z"][:2]
        loss = vicreg_loss(z1, z2, self.sim_loss_weight, self.var_loss_weight, self.cov_loss_weight)
        self.log("train_vicreg_loss", loss, on_epoch=True, sync_dist=True)
        return loss + out["loss"]
