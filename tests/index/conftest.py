# SPDX-License-Identifier: MIT
"""Shared fixtures: a small folder tree of real PNG/JPEG files and synthetic-entry indexes."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from solo_diversity.index.writer import IndexMeta, write_index

CLASSES = ("cat", "dog", "fox")
PER_CLASS = (4, 3, 5)


def encoded_image(seed: int, fmt: str) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    """root/{cat,dog,fox}/img_i.(png|jpg) with 4, 3 and 5 real images; plus a non-image file."""
    root = tmp_path / "tree"
    seed = 0
    for name, count in zip(CLASSES, PER_CLASS, strict=True):
        (root / name).mkdir(parents=True)
        for i in range(count):
            fmt, ext = ("PNG", "png") if i % 2 == 0 else ("JPEG", "jpg")
            (root / name / f"img_{i}.{ext}").write_bytes(encoded_image(seed, fmt))
            seed += 1
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def make_index(tmp_path: Path) -> Callable[..., Path]:
    """Write an index of fake paths with the given labels (no files needed: paths are not read)."""

    def make(
        labels: Sequence[int],
        *,
        seed: int = 0,
        name: str = "synthetic.h5",
        num_classes: int | None = None,
    ) -> Path:
        labels = list(labels)
        k = (
            num_classes
            if num_classes is not None
            else (max(labels) + 1 if labels and max(labels) >= 0 else 0)
        )
        meta = IndexMeta(
            dataset="synthetic",
            split="train",
            kind="paths",
            root=str(tmp_path),
            seed=seed,
            source="test",
            class_names=tuple(f"c{i}" for i in range(k)),
        )
        entries = ((f"img_{i:06d}.jpg", label) for i, label in enumerate(labels))
        return write_index(entries, tmp_path / name, meta)

    return make
