# SPDX-License-Identifier: MIT
"""Helpers of the method tests: shrunk shipped configs, tiny solo-learn batches, a CPU fit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset

from solo_diversity.config.pretrain import attach_plan, resolve_pretrain_cfg
from solo_diversity.methods import BUILTIN_METHODS

# Small heads so a forward/backward costs milliseconds; everything else is the shipped config.
SMALL_HEADS: dict[str, list[str]] = {
    "simclr": ["method_kwargs.proj_hidden_dim=32", "method_kwargs.proj_output_dim=16"],
    "mocov3": [
        "method_kwargs.proj_hidden_dim=32",
        "method_kwargs.proj_output_dim=16",
        "method_kwargs.pred_hidden_dim=32",
    ],
    "vicreg": ["method_kwargs.proj_hidden_dim=32", "method_kwargs.proj_output_dim=16"],
    "dino": [
        "method_kwargs.proj_hidden_dim=32",
        "method_kwargs.proj_output_dim=16",
        "method_kwargs.num_prototypes=24",
    ],
    "byol": [
        "method_kwargs.proj_hidden_dim=32",
        "method_kwargs.proj_output_dim=16",
        "method_kwargs.pred_hidden_dim=32",
    ],
    "barlow_twins": ["method_kwargs.proj_hidden_dim=32", "method_kwargs.proj_output_dim=16"],
    "swav": [
        "method_kwargs.proj_hidden_dim=32",
        "method_kwargs.proj_output_dim=16",
        "method_kwargs.num_prototypes=24",
        "method_kwargs.queue_size=64",
    ],
}
NAMES = sorted(BUILTIN_METHODS)


def method_cfg(
    compose_cfg: Callable[..., DictConfig],
    name: str,
    overrides: Sequence[str] = (),
    *,
    dataset_size: int = 1000,
    subset_size: int = 1000,
    num_classes: int = 10,
) -> DictConfig:
    """The resolved config of ``<name>_div`` with small heads and an attached budget plan."""
    raw = compose_cfg(
        f"{name}_div", [*SMALL_HEADS[name], "optimizer.batch_size=8", "budget.C=800", *overrides]
    )
    cfg = resolve_pretrain_cfg(raw)
    cfg, _ = attach_plan(
        cfg, dataset_size=dataset_size, subset_size=subset_size, num_classes=num_classes
    )
    return cfg


def two_crop_batch(
    batch: int = 8,
    size: int = 8,
    crops: int = 2,
    seed: int = 0,
    small: int = 0,
    small_size: int = 4,
) -> list[Any]:
    """A solo-learn training batch ``[indexes, [crops...], targets]`` of random images."""
    g = torch.Generator().manual_seed(seed)
    views = [torch.randn(batch, 3, size, size, generator=g) for _ in range(crops)]
    views += [torch.randn(batch, 3, small_size, small_size, generator=g) for _ in range(small)]
    return [torch.arange(batch), views, torch.arange(batch) % 10]


class _Repeat(Dataset):
    """The same real tensor batch served as solo-learn training samples."""

    def __init__(self, n: int = 16):
        g = torch.Generator().manual_seed(0)
        self.views = [torch.randn(n, 3, 8, 8, generator=g) for _ in range(2)]

    def __len__(self) -> int:
        return self.views[0].size(0)

    def __getitem__(self, i: int):
        return i, [v[i] for v in self.views], i % 10


def fit(model, steps: int, callbacks=()) -> pl.Trainer:
    """A real Lightning fit of ``steps`` optimizer steps on CPU."""
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    trainer.fit(model, DataLoader(_Repeat(), batch_size=8, drop_last=True))
    return trainer
