# SPDX-License-Identifier: MIT
"""Fixtures for tests/data: tiny real image files and small indexes built through the index API."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def noise_rgb(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(arr, "RGB")


def truncated_jpeg() -> bytes:
    data = encode(noise_rgb((64, 64), 7), "JPEG", quality=90)
    return data[: len(data) // 2]


# name -> bytes; the "bad_" ones must not decode.
def good_files() -> dict[str, bytes]:
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:8, :, 3] = 255  # top half opaque red, bottom half transparent
    return {
        "rgb.jpg": encode(noise_rgb((20, 16), 1), "JPEG", quality=95),
        "cmyk.jpg": encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95),
        "gray.png": encode(Image.new("L", (16, 16), 77), "PNG"),
        "rgba.png": encode(Image.fromarray(rgba, "RGBA"), "PNG"),
    }


def bad_files() -> dict[str, bytes]:
    return {
        "bad_zero.jpg": b"",
        "bad_truncated.jpg": truncated_jpeg(),
        "bad_text.png": b"this is a text file, not a PNG\n",
    }


class Images:
    """The helpers above, handed to tests through the ``images`` fixture."""

    encode = staticmethod(encode)
    noise_rgb = staticmethod(noise_rgb)
    truncated_jpeg = staticmethod(truncated_jpeg)
    good_files = staticmethod(good_files)
    bad_files = staticmethod(bad_files)


@pytest.fixture
def images() -> type[Images]:
    return Images


@pytest.fixture
def build_subset(tmp_path: Path) -> Callable[..., object]:
    """Build an index over files laid out as {class: {name: bytes}} and return its full subset."""
    from solo_diversity.index import build_index, open_index, select_subset

    counter = {"n": 0}

    def _build(
        layout: dict[str, dict[str, bytes]],
        *,
        seed: int = 0,
        embed: bool = False,
        fraction: float = -1,
    ) -> object:
        counter["n"] += 1
        root = tmp_path / f"images{counter['n']}"
        for cls, files in layout.items():
            (root / cls).mkdir(parents=True, exist_ok=True)
            for name, data in files.items():
                (root / cls / name).write_bytes(data)
        out = tmp_path / f"index{counter['n']}.h5"
        build_index("folder", out, seed=seed, dataset="custom", root=root, embed=embed)
        return select_subset(open_index(out), fraction)

    return _build


@pytest.fixture
def noise_layout() -> Callable[[int, int, tuple[int, int]], dict[str, dict[str, bytes]]]:
    """{class_c: {img_i.png: noise PNG}} with n_per_class images in each of n_classes classes."""

    def _layout(
        n_classes: int, n_per_class: int, size: tuple[int, int] = (12, 10)
    ) -> dict[str, dict[str, bytes]]:
        return {
            f"class{c}": {
                f"img{i:03d}.png": encode(noise_rgb(size, 100 * c + i), "PNG")
                for i in range(n_per_class)
            }
            for c in range(n_classes)
        }

    return _layout
