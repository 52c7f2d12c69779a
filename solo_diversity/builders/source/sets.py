# SPDX-License-Identifier: MIT
"""Selection of the paper's source sets (B, A_in_source, A_out_source) as pure functions of labels.

The sets are chosen from an index's shuffled order, so the choice is fixed by the index's seed plus
the seed given here; writing the chosen positions out as new indexes is the caller's job.
"""

from __future__ import annotations

import numpy as np

from solo_diversity.errors import UserError


def uniform_take(labels: np.ndarray, classes: np.ndarray, total: int) -> np.ndarray:
    """Take ``total`` positions, the same count per class (remainder to the first classes).

    Positions are taken in the shuffled order, i.e. the first ones of each class.

    Args:
        labels: (N,) class id of each entry, in the index's shuffled order.
        classes: (C,) class ids to draw from, in the order that receives the remainder.
        total: how many positions to take.

    Returns:
        (total,) sorted positions into ``labels``.

    Raises:
        UserError: when a class has fewer entries than its share.
    """
    if len(classes) == 0 or total < 0:
        raise UserError(f"cannot take {total} entries from {len(classes)} classes")
    base, extra = divmod(total, len(classes))
    picked = []
    for i, cls in enumerate(classes):
        want = base + (1 if i < extra else 0)
        rows = np.flatnonzero(labels == cls)
        if len(rows) < want:
            raise UserError(f"class {cls} has {len(rows)} entries, {want} needed")
        picked.append(rows[:want])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def split_half(labels: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split the entries of ``classes`` into B (half of each class) and the rest (A_in_source).

    Returns:
        ``(b, a_in)``: disjoint sorted positions whose union is every entry of ``classes``.
    """
    b_parts, a_parts = [], []
    for cls in classes:
        rows = np.flatnonzero(labels == cls)
        half = len(rows) // 2
        b_parts.append(rows[:half])
        a_parts.append(rows[half:])
    return np.sort(np.concatenate(b_parts)), np.sort(np.concatenate(a_parts))


def pick_out_classes(
    all_classes: np.ndarray, excluded: np.ndarray, count: int, seed: int
) -> np.ndarray:
    """Draw ``count`` classes not in ``excluded``, seeded (the A_out_source classes)."""
    pool = np.setdiff1d(all_classes, excluded)
    if len(pool) < count:
        raise UserError(f"only {len(pool)} classes outside the excluded set, {count} needed")
    return np.sort(np.random.default_rng(seed).choice(pool, size=count, replace=False))
