# SPDX-License-Identifier: MIT
"""The per-rank epoch sampler that makes every optimizer step see exactly G images.

This module owns the order in which a rank visits a subset: one permutation per epoch, a pure
function of (seed, epoch), truncated to a whole number of global batches and dealt out to ranks
disjointly. Nothing is padded or repeated, so no image is seen twice within an epoch and the budget
ledger can count ``len(sampler)`` images per rank per epoch. It also owns the run's position in
that order: :class:`StepBatches` deals the epoch out in batches of ``(entry, sample seed)`` keys,
can start at any batch (a resumed run continues with the next batch of the same permutation), and
:class:`LoaderPosition` is the saved ``(epoch, batches consumed)`` with the shape it belongs to.
The sample seed is a pure function of (seed, pass, position in the pass), so a sample's
augmentation draws do not depend on which worker, rank or process makes them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

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


logger = logging.getLogger(__name__)

_MASK64 = (1 << 64) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array (wrapping arithmetic): a bijective bit mixer."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def sample_seeds(seed: int, pass_index: int, positions: np.ndarray) -> np.ndarray:
    """Augmentation seeds of the samples at ``positions`` of pass ``pass_index``, int64 (P,).

    ``splitmix64(splitmix64(splitmix64(seed) + pass) + position) >> 1``: distinct keys give
    unrelated seeds, and the seed of a sample depends on nothing but (seed, pass, position), where
    position is its place in the pass's permutation (before ranks are dealt out).

    Args:
        seed: the run's non-negative seed.
        pass_index: the pass (``epoch * passes + p``).
        positions: (P,) non-negative positions in the pass's permutation.

    """
    key = _splitmix64(np.array([seed & _MASK64], dtype=np.uint64))
    with np.errstate(over="ignore"):
        key = _splitmix64(key + np.uint64(pass_index))
        mixed = _splitmix64(key + np.asarray(positions, dtype=np.uint64))
    return (mixed >> np.uint64(1)).astype(np.int64)


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

    def seeds(self, epoch: int | None = None) -> np.ndarray:
        """The :func:`sample_seeds` aligned with :meth:`indices`, (passes * per_rank,)."""
        epoch = self.epoch if epoch is None else epoch
        positions = np.arange(self.rank, self.per_rank * self.world_size, self.world_size)
        parts = [
            sample_seeds(self.seed, epoch * self.passes + p, positions) for p in range(self.passes)
        ]
        return np.concatenate(parts)

    @property
    def batches_per_pass(self) -> int:
        """Batches of ``batch_size`` one pass yields on this rank."""
        return self.per_rank // self.batch_size

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.passes * self.per_rank


@dataclass(frozen=True)
class LoaderPosition:
    """Where a training loader stands: ``batches`` of ``epoch`` consumed, for one sampler shape.

    The shape fields (``num_samples``, ``batch_size``, ``world_size``, ``accumulate``, ``passes``,
    ``seed``) fix the permutation and its batches; a position only means something for the shape
    it was saved with, which :meth:`check_shape` enforces.
    """

    epoch: int
    batches: int
    num_samples: int
    batch_size: int
    world_size: int
    accumulate: int
    passes: int
    seed: int

    @classmethod
    def of(cls, sampler: EpochSampler, epoch: int, batches: int) -> LoaderPosition:
        """The position ``batches`` into ``epoch`` of ``sampler``'s order."""
        return cls(
            epoch,
            batches,
            sampler.num_samples,
            sampler.batch_size,
            sampler.world_size,
            sampler.accumulate,
            sampler.passes,
            sampler.seed,
        )

    @property
    def pass_in_epoch(self) -> int:
        """The pass (of ``passes``) the next batch belongs to."""
        per_pass = self.num_samples // self.world_size // (self.batch_size * self.accumulate)
        per_pass = per_pass * self.accumulate  # batches per pass
        return min(self.batches // max(per_pass, 1), self.passes - 1)

    def to_dict(self) -> dict[str, Any]:
        """The position as plain ints (what a checkpoint stores), plus the derived pass."""
        return {**asdict(self), "pass": self.pass_in_epoch}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> LoaderPosition:
        """Inverse of :meth:`to_dict`; raises UserError when a field is missing."""
        names = [f for f in cls.__dataclass_fields__]
        missing = [n for n in names if n not in state]
        if missing:
            raise UserError(
                f"the checkpoint's loader position lacks {', '.join(missing)}; it was not "
                "written by this version: resume from another checkpoint or start afresh"
            )
        return cls(**{n: int(state[n]) for n in names})

    def check_shape(self, sampler: EpochSampler) -> None:
        """Raise UserError naming the first shape field that differs from ``sampler``'s."""
        now = LoaderPosition.of(sampler, self.epoch, self.batches)
        labels = {
            "num_samples": "subset size",
            "batch_size": "batch size per device",
            "world_size": "world size",
            "accumulate": "accumulate_grad_batches",
            "passes": "passes per loader epoch",
            "seed": "seed",
        }
        for name, label in labels.items():
            saved, current = getattr(self, name), getattr(now, name)
            if saved != current:
                raise UserError(
                    f"cannot resume: the {label} was {saved} in the checkpoint and is {current} "
                    "now; resume with the same settings or start a new run"
                )


class StepBatches(Sampler[list[tuple[int, int]]]):
    """The batch sampler over an :class:`EpochSampler`: batches of ``(entry, sample seed)`` keys.

    Batch b of an epoch holds entries ``indices()[b*B:(b+1)*B]`` with their
    :meth:`~EpochSampler.seeds`; its length is always the full epoch (Lightning counts a resumed
    epoch's batches from where it stopped). :meth:`start_at` sets the batch that iterations begin
    at, until it is set again: torch's multi-process loader iterates its batch sampler twice when
    it starts, so a start taken only once would be lost.

    Args:
        sampler: the rank's epoch sampler (Lightning calls its ``set_epoch`` through ``.sampler``).

    """

    def __init__(self, sampler: EpochSampler) -> None:
        self.sampler = sampler
        self._start = 0

    def __len__(self) -> int:
        return len(self.sampler) // self.sampler.batch_size

    def start_at(self, batch: int) -> None:
        """Begin iterations at ``batch`` (0 <= batch <= len) instead of 0."""
        if not 0 <= batch <= len(self):
            raise UserError(f"a loader position of {batch} batches is outside [0, {len(self)}]")
        self._start = batch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return self._batches(self.sampler.indices(), self.sampler.seeds(), self._start)

    def _batches(
        self, indices: np.ndarray, seeds: np.ndarray, start: int
    ) -> Iterator[list[tuple[int, int]]]:
        size = self.sampler.batch_size
        for b in range(start, len(self)):
            chunk = slice(b * size, (b + 1) * size)
            yield list(zip(indices[chunk].tolist(), seeds[chunk].tolist(), strict=True))


class Cursor:
    """A loader's place in its epochs: batches handed out so far, and a restored position.

    The one position rule of both training loaders (torchvision/fast and DALI): :meth:`restore`
    takes a saved :class:`LoaderPosition` (checked against the sampler) and selects its epoch;
    the next :meth:`begin` of that epoch starts at its batch; :meth:`advance` counts each batch
    handed out; :meth:`position` is what a checkpoint stores.
    """

    def __init__(self) -> None:
        self.pending: LoaderPosition | None = None
        self.epoch = 0
        self.consumed = 0

    def restore(self, sampler: EpochSampler, state: dict[str, Any], num_batches: int) -> None:
        """Load ``state`` (``{"position": ...}``); UserError when it does not fit ``sampler``."""
        position = LoaderPosition.from_dict(state.get("position", {}))
        position.check_shape(sampler)
        if position.batches > num_batches:
            raise UserError(
                f"the checkpoint's loader position ({position.batches} batches) is past the "
                f"epoch's {num_batches} batches"
            )
        if position.batches == num_batches:  # saved on the epoch's last batch: the next one is due
            position = replace(position, epoch=position.epoch + 1, batches=0)
        sampler.set_epoch(position.epoch)
        self.pending = position

    def begin(self, epoch: int) -> int:
        """Start iterating ``epoch``; returns the batch to start at (a restored one, or 0)."""
        pending, self.pending = self.pending, None
        start = 0
        if pending is not None and pending.epoch == epoch:
            start = pending.batches
        elif pending is not None:
            logger.warning(
                "the saved loader position is in epoch %d but training resumes at epoch %d; "
                "starting that epoch from its first batch",
                pending.epoch,
                epoch,
            )
        self.epoch, self.consumed = epoch, start
        return start

    def advance(self) -> None:
        """One more batch handed to training."""
        self.consumed += 1

    def position(self, sampler: EpochSampler, in_flight: int = 0) -> LoaderPosition:
        """The position to save: batches handed out less ``in_flight`` (not yet trained on)."""
        if self.pending is not None:  # restored, not iterated yet
            return self.pending
        return LoaderPosition.of(sampler, self.epoch, max(0, self.consumed - in_flight))

    def state_dict(self, sampler: EpochSampler, in_flight: int = 0) -> dict[str, Any]:
        """``{"position": ...}`` as Lightning stores a loader's state."""
        return {"position": self.position(sampler, in_flight).to_dict()}
