# SPDX-License-Identifier: MIT
"""Baseline (a) of the pretraining benchmark: solo-learn's CIFAR pretraining loader, rebuilt.

This module owns :func:`solo_style_loader`, the loader that solo-learn's ``main_pretrain.py``
assembles for CIFAR (``solo/data/pretrain_dataloader.py``), written here from its description and
not copied: torchvision's CIFAR dataset pattern (``Image.fromarray`` of a row of an in-memory uint8
array) wrapped to return the index first, the per-view transform list in upstream's order (bicubic
RandomResizedCrop, RandomApply(ColorJitter), RandomGrayscale, RandomApply of a PIL GaussianBlur
with sigma ~ U[0.1, 2.0], solarization, equalization, RandomHorizontalFlip, ToTensor, Normalize),
N crops per spec, and ``DataLoader(shuffle=True, pin_memory=True, drop_last=True)`` with the
default collate. It is the same baseline as the loader benchmark's and can be folded into it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from torch.utils.data import DataLoader, Dataset


class _Blur:
    """PIL Gaussian blur with a radius drawn uniformly in [0.1, 2.0] (solo-learn's sigma)."""

    def __call__(self, img: Image.Image) -> Image.Image:
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))


class _PILOp:
    """A PIL ``ImageOps`` function as a transform (solo-learn's Solarization, Equalization)."""

    def __init__(self, op: Callable[[Image.Image], Image.Image]) -> None:
        self.op = op

    def __call__(self, img: Image.Image) -> Image.Image:
        return self.op(img)


def upstream_view(spec: Mapping[str, Any], mean: Sequence[float], std: Sequence[float]) -> Any:
    """One view, with solo-learn's transforms in its order (torchvision v1 on a PIL image).

    Args:
        spec: one ``augmentations[]`` entry of the config (solo-learn's schema).
        mean: normalisation mean, RGB in [0, 1].
        std: normalisation std.

    """
    from torchvision import transforms as T

    bicubic = T.InterpolationMode.BICUBIC
    size, rrc, jitter = int(spec["crop_size"]), spec.get("rrc", {}), spec.get("color_jitter", {})
    steps: list[Any] = [
        T.RandomResizedCrop(
            size, scale=(rrc["crop_min_scale"], rrc["crop_max_scale"]), interpolation=bicubic
        )
        if rrc.get("enabled", True)
        else T.Resize(size, interpolation=bicubic)
    ]
    if jitter.get("prob"):
        cj = T.ColorJitter(
            jitter["brightness"], jitter["contrast"], jitter["saturation"], jitter["hue"]
        )
        steps.append(T.RandomApply([cj], p=jitter["prob"]))
    prob = {
        key: float(spec.get(key, {}).get("prob", 0.0))
        for key in ("grayscale", "gaussian_blur", "solarization", "equalization", "horizontal_flip")
    }
    if prob["grayscale"]:
        steps.append(T.RandomGrayscale(p=prob["grayscale"]))
    for key, op in (
        ("gaussian_blur", _Blur()),
        ("solarization", _PILOp(ImageOps.solarize)),
        ("equalization", _PILOp(ImageOps.equalize)),
    ):
        if prob[key]:
            steps.append(T.RandomApply([op], p=prob[key]))
    if prob["horizontal_flip"]:
        steps.append(T.RandomHorizontalFlip(p=prob["horizontal_flip"]))
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean=mean, std=std)])


class _ArrayViews(Dataset[Any]):
    """torchvision's CIFAR pattern with solo-learn's index wrapper and N-crop pipeline:
    ``(i, [view(Image.fromarray(images[i])) for each crop], label)``.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, views: list[Any]) -> None:
        self.images, self.labels, self.views = images, labels, views

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[int, list[torch.Tensor], int]:
        img = Image.fromarray(self.images[i])
        return i, [view(img) for view in self.views], int(self.labels[i])


def solo_style_loader(
    images: np.ndarray,
    labels: np.ndarray,
    specs: Sequence[Mapping[str, Any]],
    mean: Sequence[float],
    std: Sequence[float],
    *,
    batch_size: int,
    workers: int,
) -> DataLoader:
    """Baseline (a): solo-learn's CIFAR pretraining loader, rebuilt from its description.

    Args:
        images: uint8 (N, H, W, 3), the in-memory array torchvision's CIFAR datasets hold.
        labels: int (N,).
        specs: the config's ``augmentations``; spec k gives ``num_crops`` views, in order.
        mean: normalisation mean.
        std: normalisation std.
        batch_size: per step.
        workers: DataLoader workers.

    Returns:
        ``DataLoader(shuffle=True, pin_memory=True, drop_last=True)`` of
        ``[indexes (B,), [crops (B, 3, S, S)], labels (B,)]``.

    """
    views = [upstream_view(spec, mean, std) for spec in specs for _ in range(spec["num_crops"])]
    return DataLoader(
        _ArrayViews(images, labels, views),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=True,
        drop_last=True,
    )
