# SPDX-License-Identifier: MIT
"""SwAV (Caron et al., arXiv:2006.09882): predict one crop's Sinkhorn code from another crop.

Projections ``z`` are L2-normalised and scored against weight-normalised ``prototypes``
(``p = C^T z``); codes of the large crops come from Sinkhorn-Knopp, optionally over the batch
plus a queue of earlier projections; the loss is
:func:`~solo_diversity.methods.losses.swav_loss`. Config (solo-learn's names and defaults):
``proj_hidden_dim``, ``proj_output_dim``, ``temperature``, ``num_prototypes`` (3000),
``sk_iters`` (3), ``sk_epsilon`` (0.05), ``queue_size`` (65536), ``epoch_queue_starts`` (15),
``freeze_prototypes_epochs`` (1). The two epoch-counted keys are converted to optimizer steps
under the plan's ``epoch_keys`` reading (subset epochs by default, as solo-learn counts them):
the queue takes part from step ``swav_queue_start_step`` on, and the prototypes get no update
before step ``swav_freeze_prototypes_steps``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from omegaconf import DictConfig

from solo_diversity.budget.plan import BudgetPlan
from solo_diversity.methods.base import BaseMethod, fill_defaults, require_kwargs
from solo_diversity.methods.dino import WeightNormLinear
from solo_diversity.methods.heads import mlp
from solo_diversity.methods.losses import sinkhorn_codes, swav_loss
from solo_diversity.methods.ranges import NON_NEGATIVE, POSITIVE, POSITIVE_INT, PROJECTOR_RANGES
from solo_diversity.methods.settings import world_size_of


class SwAV(BaseMethod):
    """Backbone -> projector (Linear-BN-ReLU-Linear) -> normalise -> prototypes."""

    queue: torch.Tensor  # (num_large_crops, queue_size // world_size, proj_output_dim)

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        kw = self.settings.method_kwargs
        self.temperature = float(kw["temperature"])
        self.sk_iters = int(kw["sk_iters"])
        self.sk_epsilon = float(kw["sk_epsilon"])
        self.queue_size = int(kw["queue_size"])
        steps = self.converted_schedules(cfg, self.plan)
        self.queue_start_step = steps["swav_queue_start_step"]
        self.freeze_prototypes_steps = steps["swav_freeze_prototypes_steps"]
        out_dim = int(kw["proj_output_dim"])
        self.projector = mlp(
            self.features_dim, int(kw["proj_hidden_dim"]), out_dim, batch_norm=True
        )
        self.prototypes = WeightNormLinear(out_dim, int(kw["num_prototypes"]), fix_norm=True)
        self.world_size = world_size_of(cfg)
        if self.queue_size > 0:
            rows = self.queue_size // self.world_size
            self.register_buffer("queue", torch.zeros(self.num_large_crops, rows, out_dim))

    CONFIG_RANGES = {
        **PROJECTOR_RANGES,
        "method_kwargs.temperature": POSITIVE,
        "method_kwargs.num_prototypes": POSITIVE_INT,
        "method_kwargs.sk_iters": POSITIVE_INT,
        "method_kwargs.sk_epsilon": POSITIVE,
        "method_kwargs.queue_size": POSITIVE_INT,
        "method_kwargs.epoch_queue_starts": NON_NEGATIVE,
        "method_kwargs.freeze_prototypes_epochs": NON_NEGATIVE,
    }

    @staticmethod
    def add_and_assert_specific_cfg(cfg: DictConfig) -> DictConfig:
        """Require the projector sizes and temperature; fill solo-learn's SwAV defaults."""
        cfg = BaseMethod.add_and_assert_specific_cfg(cfg)
        require_kwargs(cfg, "swav", ("proj_hidden_dim", "proj_output_dim", "temperature"))
        return fill_defaults(
            cfg,
            {
                "method_kwargs.queue_size": 65536,
                "method_kwargs.num_prototypes": 3000,
                "method_kwargs.sk_epsilon": 0.05,
                "method_kwargs.sk_iters": 3,
                "method_kwargs.freeze_prototypes_epochs": 1,
                "method_kwargs.epoch_queue_starts": 15,
            },
        )

    @staticmethod
    def converted_schedules(cfg: DictConfig, plan: BudgetPlan) -> dict[str, int]:
        """Adds the queue start and the prototype freeze, in optimizer steps."""
        kw = cfg.method_kwargs
        return {
            **BaseMethod.converted_schedules(cfg, plan),
            "swav_queue_start_step": plan.epochs_to_steps(float(kw.epoch_queue_starts)),
            "swav_freeze_prototypes_steps": plan.epochs_to_steps(
                float(kw.freeze_prototypes_epochs)
            ),
        }

    @property
    def learnable_params(self) -> list[dict[str, Any]]:
        """Base groups plus projector and prototypes."""
        return super().learnable_params + [
            {"name": "projector", "params": self.projector.parameters()},
            {"name": "prototypes", "params": self.prototypes.parameters()},
        ]

    def queue_active(self, step: int) -> bool:
        """Whether the queue joins the Sinkhorn step at optimizer step ``step`` (0-based)."""
        return self.queue_size > 0 and step >= self.queue_start_step

    def prototypes_frozen(self, step: int) -> bool:
        """Whether the prototypes get no update at optimizer step ``step`` (0-based)."""
        return step < self.freeze_prototypes_steps

    def _project(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        z = F.normalize(self.projector(feats), dim=-1)
        return {"z": z, "p": self.prototypes(z)}

    def forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Adds ``z`` (B, proj_output_dim, unit norm) and ``p`` (B, num_prototypes)."""
        out = super().forward(X)
        out.update(self._project(out["feats"]))
        return out

    def multicrop_forward(self, X: torch.Tensor) -> dict[str, Any]:  # noqa: N803
        """Small crops are projected and scored too."""
        out = super().multicrop_forward(X)
        out.update(self._project(out["feats"]))
        return out

    @torch.no_grad()
    def get_assignments(self, preds: list[torch.Tensor], step: int) -> list[torch.Tensor]:
        """Sinkhorn codes (B, K) of each large crop, over batch + queue once the queue is on."""
        bs = preds[0].size(0)
        codes = []
        for i, p in enumerate(preds):
            if self.queue_active(step):
                p = torch.cat((p, self.prototypes(self.queue[i])))
            codes.append(
                sinkhorn_codes(
                    p,
                    iterations=self.sk_iters,
                    epsilon=self.sk_epsilon,
                    distributed=self.world_size > 1,
                )[:bs]
            )
        return codes

    def training_step(self, batch: list[Any], batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        """SwAV loss over all crops, then push this batch's large-crop projections on the queue."""
        out = super().training_step(batch, batch_idx)
        preds = out["p"]
        codes = self.get_assignments(preds[: self.num_large_crops], int(self.global_step))
        loss = swav_loss(preds, codes, self.temperature)
        if self.queue_size > 0:
            z = torch.stack(out["z"][: self.num_large_crops]).detach().to(self.queue.dtype)
            n = min(z.size(1), self.queue.size(1))
            self.queue[:, n:] = self.queue[:, :-n].clone()
            self.queue[:, :n] = z[:, :n]
        self.log("train_swav_loss", loss, on_epoch=True, sync_dist=True)
        return loss + out["loss"]

    def on_after_backward(self) -> None:
        """No prototype update during the converted freeze."""
        if self.prototypes_frozen(int(self.global_step)):
            for p in self.prototypes.parameters():
                p.grad = None
