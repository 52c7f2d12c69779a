# SPDX-License-Identifier: MIT
"""The multi-view transforms and a subset with unreadable entries, shared by the batch tests."""

from __future__ import annotations

from solo_diversity.data import (
    FastMultiView,
    MultiViewTransform,
    parse_augmentations,
)

ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


SPECS = parse_augmentations(
    [
        {
            "crop_size": 8,
            "num_crops": 2,
            "color_jitter": {"prob": 0.8, "brightness": 0.4, "contrast": 0.4, "saturation": 0.2},
            "grayscale": {"prob": 0.2},
            "horizontal_flip": {"prob": 0.5},
        },
        {"crop_size": 4, "num_crops": 1, "solarization": {"prob": 0.5}},
    ]
)


TRANSFORMS = {
    "fast": lambda: FastMultiView(SPECS, ZERO, ONE),
    "torchvision": lambda: MultiViewTransform(SPECS, ZERO, ONE),
}


def subset_with_unreadable(build_subset, images, noise_layout):
    """18 noise PNGs (one deleted after the build) + 3 undecodable files: 21 entries."""
    layout = noise_layout(2, 9, (16, 12))
    layout["class1"] |= images.bad_files()
    subset = build_subset(layout, seed=2)
    index = subset.index
    gone = next(p for p in range(len(index)) if index.entry_name(p) == "class0/img004.png")
    index.file_path(gone).unlink()
    unreadable = {
        p for p in range(len(index)) if index.entry_name(p).startswith("class1/bad_") or p == gone
    }
    return subset, unreadable
