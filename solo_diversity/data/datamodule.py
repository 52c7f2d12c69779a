# SPDX-License-Identifier: MIT
"""The Lightning data module for budgeted pretraining, and the guard against too many bad images.

This module owns turning typed settings (a subset, its transform, batch size, workers, seed,
accumulation) into Lightning's train/val DataLoaders: training batches come in solo-learn's layout
``[indexes (B,), [crop_0 (B, 3, H, W), ...], targets (B,)]`` from an :class:`EpochSampler`, so every
optimizer step sees exactly G images; validation batches are ``(X, Y)``. The train loader is a
:class:`ResumableLoader`: Lightning saves its position (epoch, batches consumed) in every checkpoint
and a resumed run continues with the next batch of the same permutation, each sample augmented
from its own seed. :class:`~solo_diversity.run.callbacks.BadImageGuard` stops a run as soon as
its share of unreadable images passes ``max_bad_fraction`` (checked as batches are read, not only
at the end of an epoch).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.seed import pl_worker_init_function
from PIL import Image
from torch.utils.data import DataLoader, default_collate

from solo_diversity.data.batch.pixels import (
    RAW_KEYS,
    PixelBatchDataset,
    PixelImageDataset,
    SubsetPixels,
    already_collated,
    in_memory_mode,
    memory_pixels,
)
from solo_diversity.data.batch.ring import MAX_RING_BYTES, BatchRing, RingTicket, view_shapes
from solo_diversity.data.child_signals import shield_child
from solo_diversity.data.datasets import (
    AssembledBatch,
    ClassificationDataset,
    PretrainDataset,
    ReadCounter,
)
from solo_diversity.data.sampler import Cursor, EpochSampler, StepBatches
from solo_diversity.errors import UserError

logger = logging.getLogger(__name__)

#: Ring slots: the DataLoader's default prefetch (2 batches per worker) plus the batches the
#: training loop holds (the current one and Lightning's one prefetched).
RING_PREFETCH, RING_HELD = 2, 3

Batch = list[Any]  # [indexes LongTensor (B,), [crops (B, 3, H, W)], targets LongTensor (B,)]


def collate_views(items: Sequence[tuple[int, list[torch.Tensor], int]]) -> Batch:
    """Stack pretraining items into solo-learn's batch.

    Args:
        items: B items ``(index_position, [crop_0 .. crop_{V-1}], target)``; crop k has the same
            shape (3, H_k, W_k) in every item.

    Returns:
        ``[indexes int64 (B,), [crop_k float (B, 3, H_k, W_k) for k < V], targets int64 (B,)]``.

    """
    if isinstance(items, AssembledBatch):  # stacked by the dataset's __getitems__ already
        return list(items)
    indexes = torch.tensor([item[0] for item in items], dtype=torch.long)
    num_views = len(items[0][1])
    # default_collate stacks straight into shared memory inside a worker; a plain torch.stack
    # would be copied there again when the batch is sent (~20% of the fast path's throughput).
    views = [default_collate([item[1][k] for item in items]) for k in range(num_views)]
    targets = torch.tensor([item[2] for item in items], dtype=torch.long)
    return [indexes, views, targets]


class WorkerInit:
    """A loader worker's start: deaf to the run's stop signals, seeded as Lightning seeds it.

    Ctrl-C or a scheduler's SIGTERM reaches the workers with the main process; they ignore it
    and die with the main process, which saves and stops (:func:`~solo_diversity.run.interrupt.
    shield_child`). A ``worker_init_fn`` keeps Lightning from adding its own seeding under
    ``seed_everything(workers=True)``, so that is called here, as Lightning would.

    Args:
        rank: the global rank whose workers these are.
    """

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.parent = os.getpid()

    def __call__(self, worker_id: int) -> None:
        shield_child(self.parent)
        if int(os.environ.get("PL_SEED_WORKERS", 0)):
            pl_worker_init_function(worker_id, rank=self.rank)


def batches_in_flight(trainer: pl.Trainer) -> int:
    """Batches of the current epoch that Lightning took but has not finished a training step on.

    1 while a step runs (between ``on_train_batch_start`` and the end of the step), else 0.
    """
    progress = trainer.fit_loop.epoch_loop.batch_progress.current
    processed = int(getattr(progress, "processed", progress.completed))  # typed as its base
    return max(0, int(progress.ready) - processed)


class ResumableLoader(DataLoader):
    """A DataLoader over :class:`StepBatches` that Lightning saves and restores mid-epoch.

    Lightning (2.x) stores ``state_dict()`` of every train loader that has one in the checkpoint's
    fit-loop state and calls ``load_state_dict()`` before it iterates the loader again; it then
    expects the iterator to yield the rest of the interrupted epoch while ``len()`` stays the full
    epoch. The position counts the batches handed to training in this process (workers' prefetched
    batches are not counted), less ``in_flight()`` when given: batches handed over whose training
    step has not finished, so that a checkpoint written while a step runs (Ctrl-C) resumes at that
    step, as Lightning's own progress does. The epoch an iteration draws is ``epoch_now()`` when
    given (the trainer's ``current_epoch``): after a resume from a checkpoint written on an
    epoch's last batch, Lightning 2.6 passes ``set_epoch`` a number one behind its
    ``current_epoch`` in the runs that follow, and would replay that epoch's order.

    Args:
        dataset: a map-style dataset taking ``(entry, sample seed)`` keys.
        batches: the batch sampler.
        in_flight: optional callable giving the batches taken but not yet trained on.
        epoch_now: optional callable giving the epoch being trained (None: the sampler's).
        ring: the :class:`~solo_diversity.data.batch.ring.BatchRing` the dataset's workers fill
            (batches arrive as ring tickets and leave as tensors lent from it).
        **kwargs: other DataLoader arguments (collate_fn, num_workers, ...).

    """

    def __init__(
        self,
        dataset: Any,
        batches: StepBatches,
        in_flight: Callable[[], int] | None = None,
        epoch_now: Callable[[], int | None] | None = None,
        ring: BatchRing | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, batch_sampler=batches, **kwargs)
        self.ring = ring
        self.steps = batches  # the typed handle (``batch_sampler`` is typed loosely upstream)
        self.in_flight = in_flight
        self.epoch_now = epoch_now
        self.cursor = Cursor()
        self.cursor.epoch = batches.sampler.epoch

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        # A generator: nothing starts before the first next(), i.e. after Lightning's set_epoch.
        sampler = self.steps.sampler
        epoch = self.epoch_now() if self.epoch_now is not None else None
        if epoch is not None:
            sampler.set_epoch(epoch)
        self.steps.start_at(self.cursor.begin(sampler.epoch))
        for batch in super().__iter__():
            self.cursor.advance()
            if isinstance(batch[1], RingTicket):
                assert self.ring is not None
                batch = [batch[0], self.ring.lend(batch[1].slot), batch[2]]
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """``{"position": LoaderPosition.to_dict()}``, stored by Lightning in checkpoints."""
        in_flight = self.in_flight() if self.in_flight is not None else 0
        return self.cursor.state_dict(self.steps.sampler, in_flight)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue at the saved position; UserError when the sampler's shape has changed."""
        self.cursor.restore(self.steps.sampler, state_dict, len(self.steps))


class PretrainDataModule(pl.LightningDataModule):
    """Train (and optional val) DataLoaders over index subsets for one pretraining run.

    Args:
        subset: the pretraining ``solo_diversity.index.Subset`` (N unique images).
        transform: image -> list of views (a :class:`~solo_diversity.data.MultiViewTransform`);
            None for a subclass that builds its own training loader.
        batch_size: per-device batch size B.
        num_workers: DataLoader worker processes (0 = load in the main process).
        seed: shuffle seed of the :class:`EpochSampler` (non-negative).
        accumulate: gradient accumulation steps.
        max_bad_fraction: largest accepted share of unreadable reads, in [0, 1].
        val_subset: optional validation subset; ``val_transform`` is then required.
        val_transform: image -> tensor (e.g. :func:`~solo_diversity.data.eval_transform`).
        pin_memory: pin batches for faster host-to-GPU copies.
        augment_on_device: with a batched transform (``data.augment_backend=batch``), hand the
            raw uint8 batch over and augment it after the transfer to the training device (the
            GPU) instead of in the workers.
        min_steps_per_epoch: chain passes into one loader epoch until it holds at least this many
            optimizer steps (see :class:`EpochSampler`).
        in_memory: with a per-image transform, ``"true"`` decodes the subset into memory once
            and reads images from there, ``"auto"`` does so for small images (see
            :func:`~solo_diversity.data.batch.pixels.memory_pixels`), ``"false"`` (default)
            decodes each image from the index when it is read.

    Rank and world size come from the attached trainer in :meth:`setup` (0 and 1 without one).
    Build the Trainer with ``use_distributed_sampler=False``: the sampler already shards by rank.

    """

    def __init__(
        self,
        subset: Any,
        transform: Callable[..., Any] | None,
        batch_size: int,
        num_workers: int,
        seed: int,
        accumulate: int = 1,
        max_bad_fraction: float = 0.01,
        val_subset: Any | None = None,
        val_transform: Callable[[Image.Image], torch.Tensor] | None = None,
        pin_memory: bool = False,
        min_steps_per_epoch: int = 1,
        augment_on_device: bool = False,
        in_memory: str | bool = "false",
    ) -> None:
        super().__init__()
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise UserError(f"num_workers must be an integer >= 0, got {num_workers!r}")
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise UserError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction!r}")
        if val_subset is not None and val_transform is None:
            raise UserError("a validation subset needs a val_transform")
        self.subset = subset
        self.transform = transform
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.accumulate = accumulate
        self.max_bad_fraction = float(max_bad_fraction)
        self.val_subset = val_subset
        self.val_transform = val_transform
        self.pin_memory = pin_memory
        self.min_steps_per_epoch = min_steps_per_epoch
        self.augment_on_device = augment_on_device
        self.in_memory = in_memory_mode(in_memory)
        self.rank, self.world_size = 0, 1
        self._make_dataset()
        self.sampler = self._make_sampler()

    def _make_dataset(self) -> None:
        # The counter is created in the process that builds the loaders; its workers share it.
        self._counter_pid = os.getpid()
        self.counter = ReadCounter(slots=self.num_workers + 1)
        if getattr(self.transform, "batched", False):
            self.train_dataset: Any = PixelBatchDataset(
                SubsetPixels(self.subset), self.transform, self.counter, self.augment_on_device
            )
        elif self.transform is not None:  # None: a subclass brings its own training loader
            pixels = memory_pixels(self.subset, self.in_memory)
            self.train_dataset = (
                PretrainDataset(self.subset, self.transform, self.counter)
                if pixels is None
                else PixelImageDataset(pixels, self.transform, self.counter)
            )

    def _make_sampler(self) -> EpochSampler:
        shape = dict(
            batch_size=self.batch_size,
            world_size=self.world_size,
            rank=self.rank,
            seed=self.seed,
            accumulate=self.accumulate,
        )
        one_pass = EpochSampler(len(self.subset), **shape)
        passes = -(-self.min_steps_per_epoch // one_pass.optimizer_steps_per_epoch)
        return EpochSampler(len(self.subset), **shape, passes=max(1, passes))

    def setup(self, stage: str | None = None) -> None:
        """Take rank and world size from the trainer (if any) and rebuild the sampler for them."""
        trainer = self.trainer
        if trainer is not None:
            self.rank, self.world_size = int(trainer.global_rank), int(trainer.world_size)
        if os.getpid() != self._counter_pid:
            # A rank process that received a copy (ddp_spawn) counts on its own, not in the
            # shared memory of its siblings.
            self._make_dataset()
        self.sampler = self._make_sampler()

    @property
    def bad_images(self) -> int:
        """Unreadable reads so far in this process and its workers."""
        return self.counter.bad

    @property
    def loaded_images(self) -> int:
        """Successful decodes so far in this process and its workers."""
        return self.counter.loaded

    def check_bad_images(self, bad: int | None = None, loaded: int | None = None) -> None:
        """Raise UserError when bad / (bad + loaded) exceeds ``max_bad_fraction``.

        Args:
            bad: unreadable reads to judge; default this process's :attr:`bad_images`.
            loaded: successful decodes to judge; default :attr:`loaded_images`. Pass totals over
                all ranks (as :class:`~solo_diversity.run.callbacks.BadImageGuard` does) so that
                every rank decides alike.

        """
        bad = self.bad_images if bad is None else bad
        loaded = self.loaded_images if loaded is None else loaded
        total = bad + loaded
        fraction = bad / total if total else 0.0
        if fraction > self.max_bad_fraction:
            raise UserError(
                f"{bad} of {total} image reads failed ({fraction:.2%}), more than "
                f"max_bad_fraction={self.max_bad_fraction:g}; the log names each unreadable image"
            )

    def _loader_kwargs(self) -> dict[str, Any]:
        workers = self.num_workers
        return {
            "num_workers": workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": workers > 0,
            "worker_init_fn": WorkerInit(self.rank) if workers > 0 else None,
        }

    def _batches_in_flight(self) -> int:
        """Batches Lightning took but has not finished a training step on (0 without a trainer)."""
        return 0 if self.trainer is None else batches_in_flight(self.trainer)

    def _epoch_now(self) -> int | None:
        """The epoch the trainer is in (None without a trainer)."""
        return None if self.trainer is None else int(self.trainer.current_epoch)

    def train_dataloader(self) -> ResumableLoader:
        """``len(sampler) // B`` batches ``[indexes (B,), [crops (B, 3, H, W)], targets (B,)]``.

        Each sample is augmented from its own seed (see :class:`StepBatches`), and the loader's
        position survives a checkpoint (see :class:`ResumableLoader`).
        """
        ring = self._ring()
        if hasattr(self.train_dataset, "ring"):
            self.train_dataset.ring = ring
        return ResumableLoader(
            self.train_dataset,
            StepBatches(self.sampler),
            in_flight=self._batches_in_flight,
            epoch_now=self._epoch_now,
            ring=ring,
            collate_fn=(
                already_collated
                if isinstance(self.train_dataset, PixelBatchDataset)
                else collate_views
            ),
            **self._loader_kwargs(),
        )

    def _ring(self) -> BatchRing | None:
        """Reusable batch slots for the workers (see :mod:`~solo_diversity.data.batch.ring`).

        Only when workers send batches to this process, views have fixed sizes and batches are
        not pinned (the pinning thread would copy every batch once more anyway).
        """
        specs = getattr(self.transform, "specs", None)
        if self.num_workers == 0 or self.pin_memory or self.augment_on_device or not specs:
            return None
        shapes = view_shapes(specs)
        if shapes is None:
            return None
        slots = RING_PREFETCH * self.num_workers + RING_HELD
        if slots * BatchRing.slot_bytes(self.batch_size, shapes) > MAX_RING_BYTES:
            return None
        return BatchRing(self.batch_size, shapes, slots)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment a raw batch of the batched path on the device it was moved to."""
        if isinstance(batch, list) and len(batch) == 3 and isinstance(batch[1], dict):
            raw = batch[1]
            if set(raw) == set(RAW_KEYS):
                assert self.transform is not None
                return [
                    batch[0],
                    self.transform(raw["pixels"], raw["seeds"], raw["sizes"]),
                    batch[2],
                ]
        return batch

    def val_dataloader(self) -> Any:
        """Batches ``(X (B, 3, H, W), Y (B,))`` over the whole val subset on every rank.

        Without a val subset it returns ``[]`` (no loaders), which Lightning takes as "skip
        validation"; ``None`` would make Lightning raise when the module has a validation_step.
        """
        if self.val_subset is None:
            return []
        assert self.val_transform is not None
        dataset = ClassificationDataset(self.val_subset, self.val_transform, self.counter)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            drop_last=False,
            **self._loader_kwargs(),
        )


def bad_share_lower_bound(bad: int, total: int, z: float = 3.0) -> float:
    """Wilson lower confidence bound of the bad share ``bad / total`` (0.0 for no reads).

    With z = 3 the true share lies above it with ~99.9% confidence, so an early check that fires
    only when this bound passes ``max_bad_fraction`` does not stop a run whose share is below it
    merely because a few bad images came first (3 of the first 259 reads at a 1% limit).
    """
    if total <= 0:
        return 0.0
    p, n = bad / total, float(total)
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z * z / n))
