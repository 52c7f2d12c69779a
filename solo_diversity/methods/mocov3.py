# SPDX-License-Identifier: MIT
"""MoCo v3 (Chen, Xie and He, arXiv:2104.02057): predict the EMA teacher's key of the other crop.

``loss = mocov3(q_1, k_2) + mocov3(q_2, k_1)`` with ``q = predictor(projector(f(x)))`` from the
student and ``k = momentum_projector(momentum_backbone(x))`` from the teacher
(:func:`~solo_diversity.methods.losses.mocov3_loss`). Config (solo-learn's ``method_kwargs``):
``proj_hidden_dim``, ``proj_output_dim``, ``pred_hidden_dim``, ``temperature``. The heads are
solo-learn's ``_build_mlp``: bias-free Linears with BatchNorm1d + ReLU between them. On
convolutional backbones the projector has 2 layers and ends in an affine-free BatchNorm1d, and
the 2-layer predictor ends in the Linear; on transformers (MoCo v3's ViT, see
:mod:`solo_diversity.models.vit_mocov3`) the projector has 3 layers, and both end in the affine-free
BatchNorm1d. (solo-learn takes the ResNet branch when the backbone's name contains ``resnet``; our
convolutional ``small_cnn`` takes it too.)
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from solo_diversity.methods.base import require_kwargs
from solo_diversity.methods.heads import mlp
from solo_diversity.methods.losses import mocov3_loss
from solo_diversity.methods.momentum import (
    BaseMomentumMethod,
    PredictorMomentumMethod,
    initialize_momentum_params,
)
from solo_diversity.methods.ranges import POSITIVE, POSITIVE_INT, PROJECTOR_RANGES
from solo_diversity.models.backbones import TRANSFORMER_BACKBONES


def mocov3_mlp(
    in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, *, last_batch_norm: bool = True
) -> torch.nn.Sequential:
    """MoCo v3's MLP: (Linear without bias, BatchNorm1d, ReLU) x (num_layers - 1), Linear without
    bias, then an affine-free BatchNorm1d if ``last_batch_norm``.

    Keys for 2 layers: ``0.weight``, ``1.*`` (BatchNorm), ``3.weight`` and, with the last
    BatchNorm, ``4.running_mean/running_var/num_batches_tracked``.
    """
    return mlp(
        in_dim,
        hidden_dim,
        out_dim,
        num_layers=num_layers,
        batch_norm=True,
        last_batch_norm=last_batch_norm,
        bias=False,
    )


class MoCoV3(PredictorMomentumMethod):
    """Student: backbone -> projector (z) -> predictor (q). Teacher: EMA copy -> projector (k)."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        kw = self.settings.method_kwargs
        self.temperature = float(kw["temperature"])
        hidden, out = int(kw["proj_hidden_dim"]), int(kw["proj_output_dim"])
        transformer = self.settings.backbone in TRANSFORMER_BACKBONES

        def projector() -> torch.nn.Sequential:
            return mocov3_mlp(self.features_dim, hidden, out, 3 if transformer else 2)

        self.projector = projector()
        self.momentum_projector = projector()
        initialize_momentum_params(self.projector, self.momentum_projector)
        self.predictor = mocov3_mlp(
            out, int(kw["pred_hidden_dim"]), out, 2, last_batch_norm=transformer
        )

    CONFIG_RANGES = {
        **BaseMomentumMethod.CONFIG_RANGES,
        **PROJECTOR_RANGES,
        "method_kwargs.pred_hidden_dim": POSITIVE_INT,
        "method_kwargs.temperature": POSITIVE,
    }

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        """Require the projector/predictor sizes and the temperature."""
        cfg = BaseMomentumMethod.add_and_assert_specific_cfg(cfg)
        require_kwargs(
            cfg, "mocov3", ("proj_hidden_dim", "proj_output_dim", "pred_hidden_dim", "temperature")
        )
        return cfg

    def forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Adds ``z`` (B, proj_output_dim) and ``q`` (B, proj_output_dim)."""
        out = super().forward(X)
        z = self.projector(out["feats"])
        out.update(z=z, q=self.predictor(z))
        return out

    @torch.no_grad()
    def momentum_forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Adds the teacher key ``k`` (B, proj_output_dim)."""
        out = super().momentum_forward(X)
        out["k"] = self.momentum_projector(out["feats"])
        return out

    def training_step(self, batch: list[Any], batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        """Symmetric MoCo v3 loss over the two large crops plus the classifier loss."""
        out = super().training_step(batch, batch_idx)
        q, k = out["q"], out["momentum_k"]
        loss = mocov3_loss(q[0], k[1], self.temperature) + mocov3_loss(q[1], k[0], self.temperature)
        self.log("train_contrastive_loss", loss, on_epoch=True, sync_dist=True)
        return loss + out["loss"]
