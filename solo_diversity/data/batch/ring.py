# SPDX-License-Identifier: MIT
"""Reusable shared-memory batch slots between DataLoader workers and the training process.

A DataLoader worker sends each batch through a fresh shared-memory segment, and the kernel zeroes
and maps every page of it on first write: for two float32 views of 224 px that is ~0.8 ms per
image, as much as decoding the image, and the reason a loader's throughput falls far below its
workers' compute. This module owns :class:`BatchRing`: a few batch-sized slots allocated once (so
their pages stay mapped), which workers fill in place and pass as a :class:`RingTicket` (a slot
number). The training process lends the slot out as ordinary tensors and takes it back only when
every tensor that shares its memory has been freed (a finaliser on the buffer object those
tensors keep alive), so a batch held by the caller is never overwritten. A worker that finds no
free slot within :data:`WAIT_S` allocates a fresh batch as before: nothing can deadlock.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import queue
import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from solo_diversity.data.augment import ordered_specs

logger = logging.getLogger(__name__)

#: Seconds a worker waits for a free slot before allocating a batch of its own.
WAIT_S = 0.25
#: Largest shared memory a ring may hold (its slots replace batches that would be in flight).
MAX_RING_BYTES = 4 << 30


class RingTicket(NamedTuple):
    """Stands in for a batch's views: they are in slot ``slot`` of the loader's ring."""

    slot: int


class BatchRing:
    """``slots`` sets of view tensors ``(batch_size, *shape)`` float32 in shared memory.

    Args:
        batch_size: samples per batch.
        view_shapes: the shape of each view of one sample, e.g. ``[(3, 224, 224)] * 2``.
        slots: number of batches the ring holds (at least the batches in flight at once:
            workers x prefetch factor, plus those the training loop holds).

    """

    def __init__(self, batch_size: int, view_shapes: Sequence[tuple[int, ...]], slots: int) -> None:
        self.view_shapes = [tuple(s) for s in view_shapes]
        self.slots = [
            [torch.empty((batch_size, *shape)).share_memory_() for shape in self.view_shapes]
            for _ in range(slots)
        ]
        self._free: Any = multiprocessing.get_context().Queue()
        for slot in range(slots):
            self._free.put(slot)

    @staticmethod
    def slot_bytes(batch_size: int, view_shapes: Sequence[tuple[int, ...]]) -> int:
        """Bytes of one slot (float32 views)."""
        return 4 * batch_size * sum(math.prod(shape) for shape in view_shapes)

    def acquire(self, timeout: float = WAIT_S) -> int | None:
        """A free slot's number for a worker to fill, or None when none frees up in time."""
        try:
            return int(self._free.get(timeout=timeout))
        except queue.Empty:
            return None

    def lend(self, slot: int) -> list[torch.Tensor]:
        """The views of a filled slot as tensors; the slot is free again once all are freed."""
        remaining = [len(self.view_shapes)]

        def release() -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                self._free.put(slot)

        views = []
        for tensor in self.slots[slot]:
            buffer = tensor.numpy()  # a new array object: torch.from_numpy keeps it alive
            weakref.finalize(buffer, release)
            views.append(torch.from_numpy(buffer))
        return views


def view_shapes(specs: Sequence[Any]) -> list[tuple[int, ...]] | None:
    """(3, S, S) per view, large crops first, when every view has a fixed size (rrc enabled)."""
    if not all(spec.rrc.enabled for spec in specs):
        return None
    return [(3, s.crop_size, s.crop_size) for s in ordered_specs(specs) for _ in range(s.num_crops)]
