# SPDX-License-Identifier: MIT
"""Facts about the paper's datasets that planning needs before any index exists.

Sizes are the training images each dataset has (YFCC100M: the 98.17M images the paper used).
An index, once built, is the authority: its length is what a run uses.
"""

from __future__ import annotations

from solo_diversity.errors import UserError

TRAIN_SIZES: dict[str, int] = {
    "digits": 1438,
    "fashion_mnist": 60_000,
    "cifar10": 50_000,
    "cifar100": 50_000,
    "tinyimagenet": 100_000,
    "imagenet100": 126_689,
    "imagenet": 1_281_167,
    "yfcc100m": 98_170_000,
}


def train_size(dataset: str) -> int:
    """Training images of a known dataset."""
    if dataset not in TRAIN_SIZES:
        raise UserError(
            f"unknown dataset {dataset!r} for planning; choose one of "
            f"{', '.join(TRAIN_SIZES)} or give --dataset-size"
        )
    return TRAIN_SIZES[dataset]
