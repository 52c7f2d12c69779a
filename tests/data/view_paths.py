# SPDX-License-Identifier: MIT
"""The reference and fast CPU augmentation paths, on a gradient image whose crops read back."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from solo_diversity.data import (
    FastMultiView,
    MultiViewTransform,
    parse_augmentations,
)

MEAN, STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)  # outputs stay in [0, 1] units


W, H = 64, 48


def paths(**entry: object) -> tuple[MultiViewTransform, FastMultiView]:
    specs = parse_augmentations([{"crop_size": 16, "num_crops": 1, **entry}])
    return MultiViewTransform(specs, MEAN, STD), FastMultiView(specs, MEAN, STD)


def gradient() -> Image.Image:
    """R = x position, G = y position (0..255): a crop's box can be read back from its pixels."""
    xs = np.linspace(0, 255, W)[None, :].repeat(H, 0)
    ys = np.linspace(0, 255, H)[:, None].repeat(W, 1)
    rgb = np.stack([xs, ys, np.full_like(xs, 128)], axis=-1).round().astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def draw(transform: object, img: Image.Image, n: int, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.stack([transform(img)[0] for _ in range(n)])  # type: ignore[operator]


def box_stats(views: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(area fraction, flipped) per view from the R/G gradients at the view's borders."""
    r, g = views[:, 0], views[:, 1]
    width = (r[:, :, -1].mean(1) - r[:, :, 0].mean(1)).numpy()
    height = (g[:, -1, :].mean(1) - g[:, 0, :].mean(1)).numpy()
    return np.abs(width) * np.abs(height), width < 0
