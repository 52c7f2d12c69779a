# SPDX-License-Identifier: MIT
"""solo-learn's linear evaluation as a LightningModule: frozen backbone + ``classifier`` layer.

The module keeps upstream's attribute names (``backbone``, ``classifier``), so a probe checkpoint
has the keys of solo-learn's ``LinearModel``. The backbone stays frozen and in eval mode (its
BatchNorm statistics never move); only the classifier trains, with cross-entropy (optionally
label-smoothed), the configured optimizer and the schedule of :class:`ProbeScheduler`.
Validation reports top-1/top-5 accuracies averaged over images, not over batches (upstream's
``weighted_mean`` of per-batch values, which is the same number), summed over all ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from solo_diversity.config.probe import ProbeSettings
from solo_diversity.methods.optim import OptimizerSettings, build_optimizer


def correct_at_k(
    logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> list[int]:
    """How many targets are among the top-k logits, for each k (k is capped at the class count).

    Args:
        logits: (B, K) scores.
        targets: (B,) class indices.
        ks: the k values.

    Returns:
        One count per k; ``100 * count / B`` is solo-learn's ``accuracy_at_k``.
    """
    top = logits.topk(min(max(ks), logits.size(1)), dim=1).indices  # (B, k_max)
    hits = top.eq(targets.view(-1, 1))
    return [int(hits[:, :k].any(dim=1).sum()) for k in ks]


class LinearProbe(pl.LightningModule):
    """A frozen backbone and a trained linear ``classifier`` (solo-learn's ``LinearModel``).

    Args:
        backbone: maps (B, 3, H, W) to (B, num_features); frozen here. ``nn.Identity()`` with
            ``num_features`` given trains on cached features (``probe.mode=features``).
        num_classes: K, the classifier's outputs.
        settings: the resolved probe settings (optimizer, scheduler, epochs, smoothing).
        num_features: the feature size; default ``backbone.num_features``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        settings: ProbeSettings,
        num_features: int | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        for param in self.backbone.parameters():
            param.requires_grad = False
        dim = int(num_features if num_features is not None else backbone.num_features)  # type: ignore[arg-type]
        self.classifier = nn.Linear(dim, num_classes)
        self.settings = settings
        self._val: list[torch.Tensor] = []
        self.last_val: dict[str, float] = {}
        self.last_val_epoch = -1

    def train(self, mode: bool = True) -> LinearProbe:
        """Lightning puts the module in train mode each epoch; the backbone stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) images (or (B, F) cached features) -> ``{"logits" (B, K), "feats"}``."""
        if self.settings.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            feats = self.backbone(x)
        return {"logits": self.classifier(feats.float()), "feats": feats}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:  # type: ignore[override]
        """Cross-entropy of the classifier on a ``(X, Y)`` batch of fresh training views."""
        x, y = batch
        logits = self(x)["logits"]
        # torch's label smoothing is timm's LabelSmoothingCrossEntropy that solo-learn uses:
        # (1 - s) * NLL + s * mean_k(-log p_k).
        loss = F.cross_entropy(logits, y, label_smoothing=self.settings.label_smoothing)
        c1, c5 = correct_at_k(logits.detach(), y)
        n = y.size(0)
        self.log_dict(
            {"train_loss": loss, "train_acc1": 100.0 * c1 / n, "train_acc5": 100.0 * c5 / n},
            on_epoch=True,
            sync_dist=True,
            batch_size=n,
        )
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val.clear()

    def validation_step(self, batch: Any, batch_idx: int) -> None:  # type: ignore[override]
        """Accumulate (summed loss, top-1 hits, top-5 hits, images) of a ``(X, Y)`` batch."""
        x, y = batch
        logits = self(x)["logits"]
        loss = F.cross_entropy(logits, y, reduction="sum")
        c1, c5 = correct_at_k(logits, y)
        self._val.append(torch.tensor([float(loss), c1, c5, y.size(0)], dtype=torch.float64))

    def on_validation_epoch_end(self) -> None:
        """val_loss, val_acc1, val_acc5 over every validation image of every rank."""
        if not self._val:
            return
        total = torch.stack(self._val).sum(0).to(self.device)
        total = self.trainer.strategy.reduce(total, reduce_op="sum")
        loss, c1, c5, n = (float(v) for v in total)
        metrics = {"val_loss": loss / n, "val_acc1": 100.0 * c1 / n, "val_acc5": 100.0 * c5 / n}
        self._val.clear()
        if self.trainer.sanity_checking:
            return
        self.log_dict(metrics, sync_dist=False)  # already summed over ranks
        self.last_val, self.last_val_epoch = metrics, self.current_epoch

    def configure_optimizers(self) -> Any:
        """The configured optimizer over the classifier, and its LR schedule.

        ``step`` decays per epoch (Lightning's default interval for upstream's bare MultiStepLR);
        ``warmup_cosine`` per ``scheduler.interval``, its warmup ``warmup_epochs`` epochs long.
        """
        opt, sch = self.settings.optimizer, self.settings.scheduler
        optimizer = build_optimizer(
            [{"name": "classifier", "params": list(self.classifier.parameters())}],
            OptimizerSettings(
                opt.name,
                opt.lr,
                opt.lr,
                opt.weight_decay,
                opt.exclude_bias_n_norm_wd,
                dict(opt.kwargs),
            ),
        )
        if sch.name == "none":
            return optimizer
        epochs = self.settings.max_epochs
        interval = "epoch" if sch.name == "step" else sch.interval
        total = int(self.trainer.estimated_stepping_batches) if interval == "step" else epochs
        warmup = round(sch.warmup_epochs * total / epochs)
        scheduler = LambdaLR(
            optimizer, lambda i: sch.factor(i, base_lr=opt.lr, total=total, warmup=warmup)
        )
        return [optimizer], [{"scheduler": scheduler, "interval": interval, "frequency": 1}]
