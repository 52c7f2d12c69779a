# SPDX-License-Identifier: MIT
"""Nested subsets of an index: the first k% of the stored (shuffled) order, optionally per class.

Because the index is already shuffled with its seed, a fraction is a prefix:
``select_subset(idx, f)`` is ``range(round(f * N))``, so a smaller fraction is always contained in
a larger one and the same file gives the same subset on every machine. The stratified variant
takes, for every class c, the first ``round(f * n_c)`` entries of that class in index order, which
is nested in ``f`` too (unlike a stratified ``train_test_split``). Neither reads paths or image
bytes; the stratified one streams the labels in blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from solo_diversity.errors import UserError
from solo_diversity.index.format import round_half_up
from solo_diversity.index.reader import ImageIndex

LABEL_BLOCK = 1 << 22  # labels streamed per block by the stratified selection


@dataclass(frozen=True)
class Subset:
    """A nested subset of an index.

    Attributes:
        index: the index the positions refer to.
        positions: ascending index positions: a ``range`` (plain fractions) or an int64 array.
        fraction: the requested fraction in (0, 1] (1.0 for -1 = all).
        stratified: whether it was selected per class.

    """

    index: ImageIndex
    positions: range | np.ndarray = field(repr=False)
    fraction: float
    stratified: bool

    def __len__(self) -> int:
        return len(self.positions)

    def labels(self) -> np.ndarray:
        """Labels of the subset's entries, (len(self),) int64, in position order."""
        return self.index.labels(self.positions)

    def summary(self) -> dict[str, Any]:
        """What identifies this subset, for a ledger or results row."""
        return {
            "index": str(self.index.path),
            "dataset": self.index.dataset,
            "split": self.index.split,
            "index_fingerprint": self.index.fingerprint,
            "index_seed": self.index.seed,
            "fraction": self.fraction,
            "stratified": self.stratified,
            "num_samples": len(self),
        }


def check_fraction(fraction: Any) -> float:
    """Return ``fraction`` as a float in (0, 1]; -1 (solo-learn's "all") gives 1.0.

    Raises:
        UserError: anything else (including bools, NaN, 0 and values above 1).

    """
    if isinstance(fraction, bool) or not isinstance(
        fraction, (int, float, np.integer, np.floating)
    ):
        raise UserError(f"fraction must be a number in (0, 1] or -1 for all, got {fraction!r}")
    value = float(fraction)
    if value == -1:
        return 1.0
    if not (math.isfinite(value) and 0 < value <= 1):
        raise UserError(f"fraction must be in (0, 1] or -1 for all, got {fraction!r}")
    return value


def stratified_positions(labels_blocks: Any, counts: np.ndarray, fraction: float) -> np.ndarray:
    """First ``round(fraction * n_c)`` positions of every class c, streamed over label blocks.

    Args:
        labels_blocks: iterable of (start, labels (B,) int64) covering 0..N-1 in order.
        counts: (K,) entries per class.
        fraction: share of each class to keep.

    Returns:
        (M,) int64 ascending positions.

    """
    quota = np.array([round_half_up(fraction * int(n)) for n in counts], dtype=np.int64)
    taken = np.zeros(len(counts), dtype=np.int64)
    chosen = []
    for start, block in labels_blocks:
        order = np.argsort(block, kind="stable")  # groups each class, keeping index order inside
        sorted_labels = block[order]
        group_start = np.searchsorted(sorted_labels, sorted_labels, side="left")
        rank = np.arange(len(block)) - group_start + taken[sorted_labels]
        keep = order[rank < quota[sorted_labels]]
        chosen.append(np.sort(keep) + start)
        taken += np.bincount(block, minlength=len(counts))
    return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)


def _label_blocks(index: ImageIndex) -> Any:
    n = len(index)
    for lo in range(0, n, LABEL_BLOCK):
        yield lo, index.labels(range(lo, min(lo + LABEL_BLOCK, n)))


def select_subset(index: ImageIndex, fraction: float, *, stratified: bool = False) -> Subset:
    """The first ``fraction`` of an index, overall or per class.

    Args:
        index: an opened index.
        fraction: in (0, 1], or -1 meaning all.
        stratified: take ``round(fraction * n_c)`` of each class c (needs labels).

    Returns:
        The :class:`Subset`; plain: ``range(max(1, round(fraction * N)))``.

    Raises:
        UserError: a bad fraction, stratified on an unlabeled index, or an empty result.

    """
    value = check_fraction(fraction)
    n = len(index)
    if not stratified:
        return Subset(index, range(max(1, min(n, round_half_up(value * n)))), value, False)
    if not index.has_labels:
        raise UserError(f"a stratified subset needs labels, but index {index.path} is unlabeled")
    counts = np.zeros(index.num_classes, dtype=np.int64)
    for _, block in _label_blocks(index):
        if block.min() < 0 or block.max() >= index.num_classes:
            raise UserError(f"index {index.path} has labels outside 0..{index.num_classes - 1}")
        counts += np.bincount(block, minlength=index.num_classes)
    positions = stratified_positions(_label_blocks(index), counts, value)
    if len(positions) == 0:
        raise UserError(
            f"fraction {fraction} keeps no entry of any class in {index.path}; use a larger one"
        )
    if len(positions) == n:
        return Subset(index, range(n), value, True)
    return Subset(index, positions, value, True)
