# SPDX-License-Identifier: MIT
"""The bad-image substitution rule on visit counts, so that a run with unreadable images is proven.

Every loader replaces an unreadable subset entry by the next readable entry in subset order,
wrapping (:class:`~solo_diversity.data.datasets.SubsetReader`). A run that tolerated unreadable
images (``data.max_bad_fraction > 0``) therefore visits each unreadable entry 0 times and its
substitute once more per visit it stood in for. This module owns that rule on count vectors: the
counts the sampler's order gives once substitutions are applied (:func:`substituted_visits`), the
fewest unreadable entries that explain observed counts (:func:`inferred_unreadable`), the counts
shared back over the entries a substitute stood in for (:func:`spread_visits`, for the checks that
need no replay), and which entries a run found unreadable, confirmed by reading them again
(:func:`unreadable_entries`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solo_diversity.data.decode import UnreadableImage, decode_image

# Without a replay, unvisited entries are read to find the unreadable ones, up to this many.
READ_LIMIT = 10_000


def delivering_entry(unreadable: np.ndarray) -> np.ndarray:
    """(N,) int64: the entry delivered when entry i is asked for, under the substitution rule.

    Args:
        unreadable: (N,) bool, the unreadable entries.

    Returns:
        i for a readable entry, else the first readable entry after it in subset order (wrapping);
        i itself everywhere when no entry is readable (nothing can be delivered then).

    """
    n = len(unreadable)
    readable = np.flatnonzero(~np.asarray(unreadable, dtype=bool))
    if len(readable) == 0:
        return np.arange(n, dtype=np.int64)
    return readable[np.searchsorted(readable, np.arange(n)) % len(readable)].astype(np.int64)


def substituted_visits(planned: np.ndarray, unreadable: np.ndarray) -> np.ndarray:
    """(N,) int64: the ``planned`` visits with each unreadable entry's moved to its substitute."""
    source = delivering_entry(unreadable)
    moved = np.zeros(len(planned), dtype=np.int64)
    np.add.at(moved, source, np.asarray(planned, dtype=np.int64))
    return moved


def inferred_unreadable(counts: np.ndarray, planned: np.ndarray) -> np.ndarray:
    """(N,) bool: the fewest entries whose substitution can turn ``planned`` into ``counts``.

    An entry the plan visits but the run never did must have been unreadable; so must the unvisited
    entries after it up to the next visited one (its visits passed through them). Whether these
    entries really explain the counts is for the caller to check with :func:`substituted_visits`.

    Args:
        counts: (N,) visits the run made.
        planned: (N,) visits the sampler's order plans (``visits.replayed_visits``).

    """
    counts = np.asarray(counts)
    n = len(counts)
    skipped = (counts == 0) & (np.asarray(planned) > 0)
    visited = np.flatnonzero(counts > 0)
    if len(visited) == 0 or not skipped.any():
        return skipped
    shift = int(visited[-1]) + 1  # start right after a visited entry: no run of zeros wraps
    zero = np.roll(counts == 0, -shift)
    run = np.cumsum(~zero)  # entries between two visited ones share a run id
    first = np.maximum.accumulate(np.where(np.roll(skipped, -shift), np.arange(n), -1))
    passed_on = zero & (first >= 0) & (run[np.maximum(first, 0)] == run)
    return np.roll(passed_on, shift)


def spread_visits(counts: np.ndarray, unreadable: np.ndarray) -> np.ndarray:
    """Each substitute's visits shared as evenly as can be over itself and the entries it replaced.

    The result has one value per entry (in no particular order). Without a replay, these are the
    counts to bound and to fit to the dropped tails: of all the ways a substitute's visits could
    split over its group, the even one is majorised by every other, so it fits whenever any does.

    Args:
        counts: (N,) visits the run made.
        unreadable: (N,) bool, the unreadable entries (their own visits are ignored here).

    Returns:
        (N,) int64.

    """
    size = np.bincount(delivering_entry(unreadable), minlength=len(counts))
    keep = np.flatnonzero(size)
    members, total = size[keep], np.asarray(counts, dtype=np.int64)[keep]
    rank = np.arange(int(members.sum())) - np.repeat(np.cumsum(members) - members, members)
    return np.repeat(total // members, members) + (rank < np.repeat(total % members, members))


def reads_fine(index: Any, positions: np.ndarray) -> np.ndarray:
    """(M,) bool: which index ``positions`` read and decode (a bad image or missing file fails)."""
    fine = np.ones(len(positions), dtype=bool)
    for k, position in enumerate(np.asarray(positions, dtype=np.int64).tolist()):
        try:
            decode_image(index.read_bytes(position))
        except (OSError, UnreadableImage):
            fine[k] = False
    return fine


def unreadable_entries(subset: Any, counts: np.ndarray, planned: np.ndarray | None) -> np.ndarray:
    """(N,) bool: the subset entries a run found unreadable, confirmed by reading them again.

    An unreadable entry is never visited. The candidates are the fewest unvisited entries that
    explain the counts against the plan (:func:`inferred_unreadable`) or, without a plan, every
    unvisited entry (none when more than :data:`READ_LIMIT`). Those that read fine now are left
    out, so that a proof shows their missing visits as a difference.

    Args:
        subset: the run's ``solo_diversity.index.Subset``.
        counts: (N,) visits per subset entry.
        planned: (N,) the sampler's replayed visits, or None when not replayed.

    """
    unvisited = np.asarray(counts) == 0
    if planned is not None:
        candidates = inferred_unreadable(counts, planned)
    elif unvisited.sum() <= READ_LIMIT:
        candidates = unvisited
    else:
        return np.zeros(len(counts), dtype=bool)
    entries = np.flatnonzero(candidates)
    positions = np.array([subset.positions[e] for e in entries.tolist()], dtype=np.int64)
    candidates[entries[reads_fine(subset.index, positions)]] = False
    return candidates
