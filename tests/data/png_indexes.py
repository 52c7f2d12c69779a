# SPDX-License-Identifier: MIT
"""The digits written out as PNG files, some of them garbage, and indexed by path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from solo_diversity.data.decode import decode_image
from solo_diversity.index import build_index, open_index


def digits_png_index(digits_train: Path, folder: Path, bad_share: float) -> Path:
    """A ``paths`` index of the digits as PNG files, ``bad_share`` of them garbage bytes."""
    index = open_index(digits_train)
    labels = index.labels()
    bad = set(
        np.random.default_rng(0).choice(len(index), round(bad_share * len(index)), replace=False)
    )
    root = folder / "png"
    for position in range(len(index)):
        file = root / f"class_{labels[position]}" / f"{position}.png"
        file.parent.mkdir(parents=True, exist_ok=True)
        if position in bad:
            file.write_bytes(b"not an image")
        else:
            decode_image(index.read_bytes(position)).save(file)
    return build_index("folder", folder / "paths.h5", root=root, dataset="digits")
