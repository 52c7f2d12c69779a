# SPDX-License-Identifier: MIT
"""Selection: the top images of each class by engine rank, until the target is reached.

The paper collected about 100k images and kept the top 65k. An engine's rank is its own judgement
of relevance, so within a class the survivors are taken by rank, ties between engines broken by
the order of ``--engines`` (rank 0 of each engine, then rank 1, ...): no engine dominates a class
while another has better-ranked results left.
"""

from __future__ import annotations

import numpy as np


def top_per_class(
    labels: np.ndarray, ranks: np.ndarray, engines: np.ndarray, eligible: np.ndarray, per_class: int
) -> np.ndarray:
    """Which eligible images to keep: the ``per_class`` best of each class.

    Args:
        labels: (N,) class ids.
        ranks: (N,) engine ranks (0 = best).
        engines: (N,) position of each image's engine in the engine order.
        eligible: (N,) bool, images that passed validation and deduplication.
        per_class: the target per class (fewer are kept where fewer are eligible).

    Returns:
        (N,) bool mask of the kept images.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    order = np.lexsort((engines, ranks, labels))  # by label, then rank, then engine
    keep = np.zeros(len(labels), dtype=bool)
    taken: dict[int, int] = {}
    for i in order.tolist():
        if eligible[i] and taken.get(int(labels[i]), 0) < per_class:
            keep[i] = True
            taken[int(labels[i])] = taken.get(int(labels[i]), 0) + 1
    return keep


def shortfall(
    labels: np.ndarray, keep: np.ndarray, num_classes: int, per_class: int
) -> dict[int, int]:
    """Classes that got fewer than ``per_class`` images: label -> how many are missing."""
    counts = np.bincount(labels[keep].astype(np.int64), minlength=num_classes)
    return {c: per_class - int(n) for c, n in enumerate(counts) if n < per_class}
