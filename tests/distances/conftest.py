# SPDX-License-Identifier: MIT
"""Shared fixtures: small index datasets of shifted images and tiny random-weight extractors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from torch import nn

from solo_diversity.distances.extractors import Extractor
from solo_diversity.index import build_index

SIZE = 24


def base_pixels(n: int, seed: int) -> np.ndarray:
    """(n, 24, 24, 3) uint8 smooth random images: low-res noise upsampled bilinearly."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 216, size=(n, 6, 6, 3), dtype=np.uint8)
    return np.stack(
        [
            np.asarray(Image.fromarray(c).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
            for c in coarse
        ]
    )


def shifted(pixels: np.ndarray, shift: float) -> list[Image.Image]:
    """Images moved away from the originals by ``shift`` in [0, 1]: warmer colours plus blur."""
    out = []
    for p in pixels:
        arr = p.astype(np.float32)
        arr[..., 0] += 120.0 * shift
        arr[..., 2] -= 120.0 * shift
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
        if shift > 0:
            img = img.filter(ImageFilter.GaussianBlur(radius=2.0 * shift))
        out.append(img)
    return out


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Write PNGs of ``n`` images (seed, shift) to a folder and index them (embedded bytes)."""

    def make(name: str, *, n: int = 40, seed: int = 0, shift: float = 0.0) -> Path:
        folder = tmp_path / "images" / name
        folder.mkdir(parents=True)
        for i, img in enumerate(shifted(base_pixels(n, seed), shift)):
            img.save(folder / f"{i:03d}.png")
        return build_index(
            "flat", tmp_path / f"{name}.h5", root=folder, embed=True, dataset=name, seed=1
        )

    return make


class TinyCNN(nn.Module):
    """Two random-weight conv layers; pooled (B, 16) or layered {conv1, conv2} outputs."""

    def __init__(self, *, layered: bool, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.layered = layered
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        self.calls += 1
        a = torch.relu(self.conv1(x))
        b = torch.tanh(self.conv2(a))
        if self.layered:
            return {"conv1": a, "conv2": b}
        return b.mean(dim=(2, 3))


def tiny_extractor(*, layered: bool, seed: int = 0, ranges_path: Path | None = None) -> Extractor:
    layers = {"conv1": 8, "conv2": 16} if layered else None
    return Extractor(
        "tiny_cnn",
        TinyCNN(layered=layered, seed=seed).eval(),
        (SIZE, SIZE),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        layers=layers,
        ranges_path=ranges_path,
    )


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    """Register ``tiny_fid`` (pooled) and ``tiny_vdna`` (layered, fixed ranges file) extractors."""
    from solo_diversity.distances import extractors

    ranges = tmp_path / "tiny_ranges.json"
    monkeypatch.setitem(
        extractors.POOLED, "tiny_fid", lambda weights: tiny_extractor(layered=False)
    )
    monkeypatch.setitem(
        extractors.LAYERED,
        "tiny_vdna",
        lambda weights: tiny_extractor(layered=True, ranges_path=ranges),
    )
    return {"ranges": ranges}


@pytest.fixture
def tiny() -> Callable[..., Extractor]:
    """Factory of tiny random-weight extractors: ``tiny(layered=, seed=, ranges_path=)``."""
    return tiny_extractor
