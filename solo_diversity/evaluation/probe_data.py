# SPDX-License-Identifier: MIT
"""The probe's training and validation batches, in both modes and on both data paths.

``protocol`` (solo-learn's linear evaluation): training views drawn afresh every epoch from the
labelled subset, RandomResizedCrop(size, scale 0.08-1) + horizontal flip, shuffled, whole batches
only (``drop_last``); validation with the evaluation view (resize + centre crop: 256 -> 224 at
ImageNet size, the image as it is at CIFAR size). With ``data.format=dali`` the training views come
from DALI, a new shuffled order and a new augmentation seed each epoch, and validation reads with
torchvision, as upstream's ``main_linear.py`` does. ``features`` (not the paper's protocol):
frozen features computed once (the eval view, or ``train_views`` augmented views per image) and
served from memory.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from solo_diversity.data import (
    ClassificationDataset,
    ScreenCache,
    dataset_stats,
    default_crop_fraction,
    eval_transform,
    probe_batches,
    probe_train_transform,
)
from solo_diversity.data.dali.loader import pipeline_seed
from solo_diversity.evaluation.features import ProbeData, extract_features

log = logging.getLogger(__name__)

# The normalisation of solo-learn's linear-eval transforms (classification_dataloader.py): CIFAR-100
# is normalised with CIFAR-10's statistics there, STL-10 with its own rounding, ImageNet* and
# custom data with timm's ImageNet defaults. Other datasets use dataset_stats.
_CIFAR = ((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))
LINEAR_EVAL_STATS: dict[str, tuple[Sequence[float], Sequence[float]]] = {
    "cifar10": _CIFAR,
    "cifar100": _CIFAR,
    "stl10": ((0.4914, 0.4823, 0.4466), (0.247, 0.243, 0.261)),
}


def probe_stats(dataset: str) -> tuple[Sequence[float], Sequence[float]]:
    """(mean, std) of the probe's input normalisation for ``dataset`` (see module docstring)."""
    if dataset in LINEAR_EVAL_STATS:
        return LINEAR_EVAL_STATS[dataset]
    mean, std = dataset_stats(dataset)
    return mean, std


def drop_last_for(size: int, batch_size: int) -> bool:
    """solo-learn drops the last partial batch; a set smaller than one batch keeps its one."""
    if size < batch_size:
        log.warning(
            "%d labelled images < optimizer.batch_size=%d: one partial batch per epoch",
            size,
            batch_size,
        )
        return False
    return True


class DaliTrainViews:
    """Lightning's training loader on the DALI path: ``len`` batches, new views every epoch.

    Each ``iter`` is one epoch: the subset in a fresh seeded order (``(seed, epoch)``) through the
    DALI probe pipeline's RRC + flip with a fresh augmentation seed; the last partial batch is
    dropped when ``drop_last``.

    Args:
        probe: the DALI probe reading settings (size, mean, std, workers, device, cache).
        subset: the labelled subset.
        batch_size: images per batch.
        seed: the probe's ``seed``.
        drop_last: drop the last partial batch.
    """

    def __init__(
        self, probe: ProbeData, subset: Any, batch_size: int, seed: int, drop_last: bool
    ) -> None:
        self.probe, self.subset, self.batch_size = probe, subset, batch_size
        self.seed, self.drop_last, self.epoch = seed, drop_last, 0

    def __len__(self) -> int:
        n = len(self.subset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.subset))
        shuffled = dataclasses.replace(
            self.subset, positions=np.asarray(self.subset.positions)[order]
        )
        batches = probe_batches(
            shuffled,
            self.probe.size,
            self.probe.mean,
            self.probe.std,
            train=True,
            crop_fraction=default_crop_fraction(self.probe.size),
            batch_size=self.batch_size,
            num_workers=self.probe.num_workers,
            device=self.probe.dali_device,
            seed=pipeline_seed(self.seed, epoch),
            screen_cache=ScreenCache.default_path(self.subset.index, self.probe.screen_cache),
        )
        for x, y in batches:  # read to the end, so that DALI's pipeline closes
            if self.drop_last and x.size(0) < self.batch_size:
                continue
            yield x, y


def protocol_loaders(
    probe: ProbeData, train: Any, test: Any, batch_size: int, seed: int
) -> tuple[Any, DataLoader]:
    """(train loader of fresh augmented views, val loader of eval views) for ``protocol``."""
    drop_last = drop_last_for(len(train), batch_size)
    workers = probe.num_workers
    val = DataLoader(
        ClassificationDataset(test, eval_transform(probe.size, probe.mean, probe.std)),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    if probe.data_format == "dali":
        return DaliTrainViews(probe, train, batch_size, seed, drop_last), val
    views = ClassificationDataset(train, probe_train_transform(probe.size, probe.mean, probe.std))
    return DataLoader(
        views,
        batch_size=batch_size,
        shuffle=True,
        drop_last=drop_last,
        num_workers=workers,
        persistent_workers=workers > 0,
    ), val


def feature_loaders(
    model: nn.Module, probe: ProbeData, train: Any, test: Any, batch_size: int, train_views: int
) -> tuple[DataLoader, DataLoader, int]:
    """(train, val, feature size) over features computed once, for ``features`` mode.

    ``train_views`` 0 trains on the eval view of each labelled image; k > 0 on k RRC + flip views
    of each, drawn once.
    """
    parts = [extract_features(model, probe.batches(train, train=True)) for _ in range(train_views)]
    x_train, y_train = (
        (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
        if parts
        else extract_features(model, probe.batches(train, train=False))
    )
    x_test, y_test = extract_features(model, probe.batches(test, train=False))
    drop_last = drop_last_for(len(x_train), batch_size)
    return (
        DataLoader(
            TensorDataset(x_train, y_train.long()),
            batch_size=batch_size,
            shuffle=True,
            drop_last=drop_last,
        ),
        DataLoader(TensorDataset(x_test, y_test.long()), batch_size=batch_size),
        int(x_train.size(1)),
    )
