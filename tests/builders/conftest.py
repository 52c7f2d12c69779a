# SPDX-License-Identifier: MIT
"""A fake ImageNet tree (the 100 ImageNet-100 WNIDs plus 10 others, a few real PNGs each) and
small indexes built from it with the project's own ``index build``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from solo_diversity.builders.source.build import imagenet100_wnids
from solo_diversity.index import build_index

OTHER_WNIDS = tuple(f"n0999{i:04d}" for i in range(10))  # well-formed, not in ImageNet-1k
PER_CLASS = 4


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_tree(
    root: Path, classes: tuple[str, ...] | list[str], per_class: int, seed0: int
) -> Path:
    """root/<class>/img_<i>.png, every image distinct (seeded from ``seed0``)."""
    seed = seed0
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            (root / name / f"img_{i}.png").write_bytes(png(seed))
            seed += 1
    return root


@pytest.fixture(scope="session")
def imagenet_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """110 WNID folders: all of ImageNet-100 and 10 others, 4 images each (440 images)."""
    root = tmp_path_factory.mktemp("imagenet") / "train"
    return write_tree(root, [*imagenet100_wnids(), *OTHER_WNIDS], PER_CLASS, 0)


@pytest.fixture(scope="session")
def imagenet_index(imagenet_tree: Path) -> Path:
    """The fake tree as a paths index (seed 3), built by ``index build folder``."""
    return build_index("folder", imagenet_tree.parent / "train.h5", root=imagenet_tree, seed=3)


@pytest.fixture(scope="session")
def pets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two small trees with overlapping class names in different orders, as paths and bytes
    indexes: ``a`` has cat, dog (3 each); ``b`` has ant, dog, eel (2 each)."""
    base = tmp_path_factory.mktemp("pets")
    a = write_tree(base / "a", ("cat", "dog"), 3, 1000)
    b = write_tree(base / "b", ("ant", "dog", "eel"), 2, 2000)
    out = {}
    for name, root in (("a", a), ("b", b)):
        out[name] = build_index("folder", base / f"{name}.h5", root=root, seed=1)
        out[f"{name}_bytes"] = build_index(
            "folder", base / f"{name}_bytes.h5", root=root, seed=1, embed=True
        )
    return out
