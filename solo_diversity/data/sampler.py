# SPDX-License-Identifier: MIT
"""The per-rank epoch sampler that makes every optimizer step see exactly G images.

This module owns the order in which a rank visits a subset: one permutation per epoch, a pure
function of (seed, epoch), truncated to a whole number of global batches and dealt out to ranks
disjointly. Nothing is padded or repeated, so no image is seen twice within an epoch and the budget
ledger can count ``len(sampler)`` images per rank per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from solo_diversity.errors import UserError


def _check_int(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise UserError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def per_rank_samples(num_samples: int, *, batch_size: int, world_size: int, accumulate: int) -> int:
    """Samples one rank draws per epoch: floor(N / world_size / (B * accumulate)) * B * accumulate.

    Args:
        num_samples: N, the subset size.
        batch_size: B, per-device batch size.
        world_size: number of ranks (devices x nodes).
        accumulate: gradient accumulation steps.

    Raises:
        UserError: when N is smaller than one global batch G = B x world_size x accumulate.

    """
    step_images = batch_size * accumulate
    count = num_samples // world_size // step_images * step_images
    if count == 0:
        global_batch = step_images * world_size
        raise UserError(
            f"subset of {num_samples} images is smaller than one global batch of {global_batch} "
            f"(batch_size {batch_size} × devices {world_size} × accumulate {accumulate})"
        )
    return count


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """The epoch's order of subset entries: a permutation of range(N) from (seed, epoch) alone."""
    rng = np.random.default_rng([seed, epoch])
    dtype = np.int32 if num_samples < 2**31 else np.int64
    order = np.arange(num_samples, dtype=dtype)
    rng.shuffle(order)
    return order


class EpochSampler(Sampler[int]):
    """Per-rank sampler: reshuffled each epoch, disjoint across ranks, whole optimizer steps only.

    Each epoch draws ``perm = epoch_permutation(N, seed, epoch)`` (the same on every rank), keeps
    its first ``world_size * per_rank`` entries and gives rank r every world_size-th of them from
    r. ``per_rank`` is :func:`per_rank_samples`, a multiple of ``batch_size * accumulate``, so with
    ``drop_last=True`` every optimizer step sees exactly G = batch_size x world_size x accumulate
    images. The dropped tail changes every epoch.

    With ``passes > 1`` one loader epoch chains that many passes, each a fresh permutation
    (pass ``epoch * passes + p``) truncated on its own, so no step mixes two passes. Short passes
    (a 10% subset is ~19 steps) then no longer pay the loader's per-epoch stall every few steps.

    Lightning calls :meth:`set_epoch` before each epoch. With Lightning, build the Trainer with
    ``use_distributed_sampler=False``: this sampler already shards by rank.

    Args:
        num_samples: N, size of the dataset it indexes (indices 0..N-1).
        batch_size: per-device batch size.
        world_size: number of ranks.
        rank: this rank, in [0, world_size).
        seed: non-negative shuffle seed.
        accumulate: gradient accumulation steps.
        passes: passes over the subset per loader epoch.

    """

    def __init__(
        self,
        num_samples: int,
        *,
        batch_size: int,
        world_size: int,
        rank: int,
        seed: int,
        accumulate: int = 1,
        passes: int = 1,
    ) -> None:
        self.passes = _check_int(passes, "passes", 1)
        self.num_samples = _check_int(num_samples, "num_samples", 0)
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.world_size = _check_int(world_size, "world_size", 1)
        self.rank = _check_int(rank, "rank", 0)
        if self.rank >= self.world_size:
            raise UserError(f"rank must be in [0, {self.world_size}), got {rank!r}")
        self.seed = _check_int(seed, "seed", 0)
        self.accumulate = _check_int(accumulate, "accumulate", 1)
        self.per_rank = per_rank_samples(
            self.num_samples,
            batch_size=self.batch_size,
            world_size=self.world_size,
            accumulate=self.accumulate,
        )
        self.epoch = 0

    @property
    def global_batch(self) -> int:
        """G = batch_size x world_size x accumulate: images per optimizer step."""
        return self.batch_size * self.world_size * self.accumulate

    @property
    def optimizer_steps_per_epoch(self) -> int:
        """Optimizer steps one epoch yields (the same on every rank)."""
        return self.passes * self.per_rank // (self.batch_size * self.accumulate)

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of this epoch (Lightning calls it before each epoch)."""
        self.epoch = _check_int(epoch, "epoch", 0)

    def indices(self, epoch: int | None = None) -> np.ndarray:
        """Indices of this rank for ``epoch`` (default: the current one), (passes * per_rank,)."""
        epoch = self.epoch if epoch is None else epoch
        keep = self.per_rank * self.world_size
        parts = [
            epoch_permutation(self.num_samples, self.seed, epoch * self.passes + p)[:keep]
            for p in range(self.passes)
        ]
        return np.concatenate(parts)[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.passes * self.per_rank
