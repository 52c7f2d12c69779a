# SPDX-License-Identifier: MIT
"""Per-image visit counts: which images of the subset a run trained on, and how often.

This module owns the second half of the budget ledger:
:class:`~solo_diversity.run.callbacks.VisitLedger` counts, for every subset entry, the training
batches' ``indexes`` (index positions) whose training step finished (a batch still in flight when a
checkpoint is written is left out, as the resumable loader leaves it out of its position), summed
over ranks. The counts travel in every checkpoint (so a resumed run continues them) and are written
at the end as ``visits.npz`` beside the checkpoints: ``counts`` (N,) in the subset's entry order,
``positions`` (N,) the index positions of those entries, and ``outside`` the number of visits to
positions that are not in the subset (0 for a correct run), and ``unreadable`` the positions of the
entries the run found unreadable (their visits went to the next readable entry), with
``visits.json`` holding their :func:`visit_proof`. :func:`visit_proof` turns counts into what the
ledger proves: no visit outside the subset, and counts that the sampler's passes (each dropping its
tail of N mod G images) produce, checked from the counts alone and, given the seed, against a replay
of the sampler's order, under the substitution rule of :mod:`~solo_diversity.run.substitution` when
images were unreadable.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from solo_diversity.data.sampler import epoch_permutation
from solo_diversity.run.substitution import (
    inferred_unreadable,
    spread_visits,
    substituted_visits,
)

log = logging.getLogger(__name__)

# Replaying the sampler costs about one permutation of N per pass; skip it above this many entries.
REPLAY_LIMIT = 200_000_000


def count_dtype(max_visits: int) -> np.dtype:
    """The smallest unsigned dtype that holds ``max_visits`` (uint8, uint16 or uint32)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_visits <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def entry_of(positions: np.ndarray, visited: np.ndarray) -> tuple[np.ndarray, int]:
    """Subset entries of visited index positions, and how many visits fall outside the subset.

    Args:
        positions: (N,) index positions of the subset's entries (any order, distinct).
        visited: (B,) index positions taken from a batch's ``indexes``.

    Returns:
        ``(entries (B',), outside)``: the entries of the visits inside the subset and the count
        of the others.

    """
    order = np.argsort(positions, kind="stable")
    sorted_positions = positions[order]
    slot = np.searchsorted(sorted_positions, visited)
    slot = np.minimum(slot, len(sorted_positions) - 1)
    inside = sorted_positions[slot] == visited
    return order[slot[inside]], int((~inside).sum())


def entries_on_device(
    sorted_positions: torch.Tensor, order: torch.Tensor, visited: torch.Tensor
) -> torch.Tensor:
    """:func:`entry_of` for tensors, on their device and without a host sync.

    A visit outside the subset maps to entry N, one past the last, so that one ``index_add_``
    into N + 1 counters counts both kinds; nothing here waits for the device (no masking, no
    ``.item()``).

    Args:
        sorted_positions: (N,) int64 index positions of the subset, sorted.
        order: (N,) int64, the entry of each sorted position.
        visited: (B,) index positions taken from a batch's ``indexes``, on the same device.

    Returns:
        (B,) int64 entries in [0, N].

    """
    visited = visited.to(torch.int64)
    slot = torch.searchsorted(sorted_positions, visited).clamp_(max=len(sorted_positions) - 1)
    inside = sorted_positions[slot] == visited
    return torch.where(inside, order[slot], len(order))


def visit_summary(counts: np.ndarray, outside: int) -> dict[str, Any]:
    """``{min, max, images_seen, unseen, outside, histogram {visits: images}}`` of visit counts."""
    values, images = np.unique(counts, return_counts=True)
    return {
        "min": int(counts.min()) if len(counts) else 0,
        "max": int(counts.max()) if len(counts) else 0,
        "images_seen": int(counts.sum()),
        "unseen": int((counts == 0).sum()),
        "outside": int(outside),
        "histogram": {str(int(v)): int(n) for v, n in zip(values, images, strict=True)},
    }


def pass_layout(num_samples: int, global_batch: int, steps: int) -> tuple[int, int, int]:
    """``(whole passes, images of the last partial pass, images dropped per pass)`` of a run.

    A pass over the subset is one permutation cut to ``N // G`` optimizer steps (see
    :class:`~solo_diversity.data.sampler.EpochSampler` and
    :func:`~solo_diversity.data.sampler.per_rank_samples`, whose nested floors equal
    ``N // G``), so it visits ``N - N mod G`` distinct images and drops the other ``N mod G``.
    ``steps`` optimizer steps are ``steps // (N // G)`` whole passes and, over all ranks, the
    first ``(steps mod (N // G)) * G`` entries of the next pass's permutation.

    Args:
        num_samples: N, the subset size.
        global_batch: G, images per optimizer step.
        steps: optimizer steps trained.

    """
    per_pass = num_samples // global_batch
    if per_pass == 0:  # the sampler refuses such a subset; no step can have run
        return 0, 0, num_samples
    whole, rest = divmod(steps, per_pass)
    return whole, rest * global_batch, num_samples - per_pass * global_batch


def misses_feasible(counts: np.ndarray, touched: int, misses: list[int]) -> bool:
    """Whether passes that each leave ``misses[j]`` images out can give the visit ``counts``.

    Image i misses ``s_i = touched - counts_i`` of the ``touched`` passes, at most once each, and
    pass j misses exactly ``misses[j]`` images, any of them. Such a 0/1 (image x pass) matrix
    exists iff ``0 <= s_i <= touched``, ``sum(s) == sum(misses)`` and, for every k, the k
    largest ``misses`` sum to at most ``sum_i min(s_i, k)`` (the Gale-Ryser theorem).

    Args:
        counts: (N,) visits per image.
        touched: passes the run started.
        misses: (touched,) images each pass left out.

    """
    short = touched - np.asarray(counts, dtype=np.int64)
    if len(short) == 0 or short.min() < 0 or short.max() > touched:
        return len(short) == 0 and sum(misses) == 0
    if int(short.sum()) != sum(misses):
        return False
    if touched == 0:
        return True
    at_least = np.bincount(short, minlength=touched + 1)[::-1].cumsum()[::-1]  # #{s_i >= t}
    capacity = np.cumsum(at_least[1 : touched + 1])  # [k-1] = sum_i min(s_i, k)
    demand = np.cumsum(sorted(misses, reverse=True))
    return bool((demand <= capacity).all())


def replayed_visits(num_samples: int, global_batch: int, steps: int, seed: int) -> np.ndarray:
    """The visit counts (N,) int64 of a correct run: the sampler's order replayed.

    Pass p is ``epoch_permutation(N, seed, p)`` (loader epoch e chains passes ``e * passes``
    to ``e * passes + passes - 1``, so passes run 0, 1, 2, ... whatever ``passes`` is); the
    ranks together take its prefix, so the counts do not depend on the world size.
    """
    whole, partial, dropped = pass_layout(num_samples, global_batch, steps)
    counts = np.zeros(num_samples, dtype=np.int64)
    for p in range(whole):
        counts[epoch_permutation(num_samples, seed, p)[: num_samples - dropped]] += 1
    if partial:
        counts[epoch_permutation(num_samples, seed, whole)[:partial]] += 1
    return counts


def sampler_replay(num_samples: int, global_batch: int, steps: int, seed: int) -> np.ndarray | None:
    """:func:`replayed_visits`, or None when it means more than :data:`REPLAY_LIMIT` entries."""
    whole, partial, _ = pass_layout(num_samples, global_batch, steps)
    if (whole + (partial > 0)) * num_samples > REPLAY_LIMIT:
        return None
    return replayed_visits(num_samples, global_batch, steps, seed)


def visit_proof(
    counts: np.ndarray,
    outside: int,
    *,
    global_batch: int,
    steps: int,
    seed: int | None = None,
    unreadable: np.ndarray | None = None,
) -> dict[str, Any]:
    """What the visit counts prove about a run of ``steps`` optimizer steps of G images.

    With W whole passes, a last pass of P images (P = 0 when it ended on a pass boundary) and
    d = N mod G images dropped from every pass (:func:`pass_layout`), image i is visited
    ``v_i = T - s_i`` times, T = W + (P > 0) the passes started and s_i the passes that left it
    out (each pass visits an image at most once). The counts are consistent with the sampler iff
    no visit falls outside the subset, ``sum(v) == steps * G``, ``0 <= s_i <= T`` and the
    misses fit W passes leaving d images out and one leaving N - P out
    (:func:`misses_feasible`). With d = 0 this is exactly: every image seen floor(E') or
    ceil(E') times, E' = images_seen / N, with P images at ceil (``allowed`` is
    ``[floor, ceil]``); with d > 0 an image seen fewer times fell in that many dropped tails
    (``allowed`` is ``[0, T]``), and the tails bound how many can. Given the ``seed``, the
    counts must also equal :func:`replayed_visits` (``exact``; None when not checked: no seed,
    or more than :data:`REPLAY_LIMIT` entries to replay).

    A run that skipped unreadable images is proven under the loaders' substitution rule
    (:mod:`~solo_diversity.run.substitution`): an unreadable entry's visits go to the next readable
    entry, so it must have none, the replay is compared after moving its visits there, and the
    bounds and the dropped tails are checked on each substitute's visits spread evenly over the
    entries it stood in for. Without ``unreadable``, the fewest entries that explain the counts
    against the replay are taken as unreadable (none without a replay).

    Args:
        counts: (N,) visits per subset entry.
        outside: visits to index positions outside the subset.
        global_batch: G, images per optimizer step.
        steps: optimizer steps trained.
        seed: the sampler's seed, to replay its order.
        unreadable: (N,) bool, the entries the run found unreadable; None to infer them.

    Returns:
        :func:`visit_summary` plus ``steps``, ``global_batch``, ``expected_images`` (steps x G),
        ``passes`` (steps / (N // G), counting the dropped tails), ``epochs_seen``
        (images_seen / N), ``whole_passes``, ``last_pass_images``, ``dropped_per_pass``,
        ``allowed`` ([lowest, highest] visits of one image), ``unreadable`` (entries substituted),
        ``feasible``, ``exact``, ``visits_ok`` and ``problems`` (one line each).

    """
    counts = np.asarray(counts, dtype=np.int64)
    n = len(counts)
    whole, partial, dropped = pass_layout(n, global_batch, steps)
    touched = whole + (partial > 0)
    low = whole if dropped == 0 else 0
    summary = visit_summary(counts, outside)
    expected = steps * global_batch
    misses = [dropped] * whole + ([n - partial] if partial else [])
    replay = None if seed is None else sampler_replay(n, global_batch, steps, seed)
    if unreadable is None:
        unreadable = np.zeros(n, bool) if replay is None else inferred_unreadable(counts, replay)
    unreadable = np.asarray(unreadable, dtype=bool)
    substituted = int(unreadable.sum())
    own = spread_visits(counts, unreadable) if substituted else counts  # what each entry drew
    feasible = misses_feasible(own, touched, misses)
    if replay is not None and substituted:
        replay = substituted_visits(replay, unreadable)
    exact = None if replay is None else bool(np.array_equal(counts, replay))
    problems = []
    if outside:
        problems.append(f"{outside} visits to images outside the subset")
    visited_bad = int((counts[unreadable] > 0).sum())
    if visited_bad:
        problems.append(f"{visited_bad} unreadable images were visited")
    if summary["images_seen"] != expected:
        problems.append(
            f"the counts total {summary['images_seen']} visits; {steps} steps of "
            f"{global_batch} images make {expected}"
        )
    above, below = int((own > touched).sum()), int((own < low).sum())
    if above:
        problems.append(f"{above} images seen more than {touched} times (once per pass at most)")
    if below:
        problems.append(f"{below} images seen fewer than {low} times")
    if not (feasible or above or below or summary["images_seen"] != expected):
        last = f" and a last pass leaving {n - partial} out" if partial else ""
        problems.append(
            f"{int((own < touched).sum())} images seen fewer than {touched} times "
            f"({summary['unseen']} unseen) cannot come from {whole} whole passes dropping "
            f"{dropped} images each{last}"
        )
    if replay is not None and not exact:
        differ = int((counts != replay).sum())
        rule = f" with {substituted} unreadable images replaced" if substituted else ""
        problems.append(
            f"{differ} images' counts differ from the sampler's order{rule} (seed {seed})"
        )
    per_pass = n // global_batch
    return {
        **summary,
        "steps": steps,
        "global_batch": global_batch,
        "expected_images": expected,
        "passes": steps / per_pass if per_pass else 0.0,
        "epochs_seen": summary["images_seen"] / n if n else 0.0,
        "whole_passes": whole,
        "last_pass_images": partial,
        "dropped_per_pass": dropped,
        "allowed": [low, touched],
        "unreadable": substituted,
        "feasible": feasible,
        "exact": exact,
        "visits_ok": not problems,
        "problems": problems,
    }
