# SPDX-License-Identifier: MIT
"""A tiny LightningModule on the datamodule's batches that records the sampler's epochs."""

from __future__ import annotations

import lightning.pytorch as pl
import torch


class TinyModule(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3 * 8 * 8, 2)
        self.epochs_seen = []
        self.val_batches = 0

    def training_step(self, batch, batch_idx):
        indexes, crops, targets = batch
        return self.layer(crops[0].flatten(1)).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.val_batches += 1
        return self.layer(x.flatten(1)).pow(2).mean()

    def on_train_epoch_start(self):
        self.epochs_seen.append(self.trainer.datamodule.sampler.epoch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)
