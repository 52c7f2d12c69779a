# SPDX-License-Identifier: MIT
"""SimCLR (Chen et al., arXiv:2002.05709): contrast crops of the same image against the batch.

Config (solo-learn's ``method_kwargs``): ``proj_hidden_dim``, ``proj_output_dim``, ``temperature``.
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from solo_diversity.methods.base import BaseMethod, ProjectedMethod, require_kwargs
from solo_diversity.methods.heads import mlp
from solo_diversity.methods.losses import simclr_loss
from solo_diversity.methods.ranges import POSITIVE, PROJECTOR_RANGES


class SimCLR(ProjectedMethod):
    """Backbone -> 2-layer projector -> NT-Xent with index-based positives."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        kw = self.settings.method_kwargs
        self.temperature = float(kw["temperature"])
        self.projector = mlp(
            self.features_dim, int(kw["proj_hidden_dim"]), int(kw["proj_output_dim"])
        )

    CONFIG_RANGES = {**PROJECTOR_RANGES, "method_kwargs.temperature": POSITIVE}

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        """Require the projector sizes and the temperature."""
        cfg = BaseMethod.add_and_assert_specific_cfg(cfg)
        require_kwargs(cfg, "simclr", ("proj_hidden_dim", "proj_output_dim", "temperature"))
        return cfg

    def training_step(self, batch: list[Any], batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        """NT-Xent over all crops plus the online classifier loss."""
        indexes = batch[0]
        out = super().training_step(batch, batch_idx)
        z = torch.cat(out["z"])
        nce = simclr_loss(z, indexes.repeat(self.num_crops), self.temperature)
        self.log("train_nce_loss", nce, on_epoch=True, sync_dist=True)
        return nce + out["loss"]
