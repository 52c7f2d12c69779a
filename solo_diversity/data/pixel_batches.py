# SPDX-License-Identifier: MIT
"""Decoded pixels of a small-image subset, served a whole batch at a time.

This module owns the data side of ``data.augment_backend=batch``. :class:`SubsetPixels` decodes
every entry of a subset once (32-64 px images: CIFAR's 50,000 take a few seconds, 150 MB) into one
shared uint8 array, resolving unreadable entries by the loader's one substitution rule (the next
readable entry in subset order, wrapping; see
:class:`~solo_diversity.data.datasets.SubsetReader`). :class:`PixelBatchDataset` answers a whole
batch of ``(entry, sample seed)`` keys in one ``__getitems__`` call: a gather from that array and
either the augmented views (in DataLoader workers) or the raw uint8 batch with its seeds, which
the datamodule augments on the device after transfer. Its reads are counted exactly as the
per-image path counts them (one load per delivered entry, one bad read per skipped entry), so
the bad-image guard and the ledger see the same numbers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from solo_diversity.data.batch_ring import BatchRing, RingTicket
from solo_diversity.data.datasets import ReadCounter, SubsetReader, ring_slot
from solo_diversity.data.decode import UnreadableImage, decode_image
from solo_diversity.errors import UserError

logger = logging.getLogger(__name__)

#: Largest image side the batched path keeps decoded in memory (it is meant for 32-64 px sets).
MAX_SIDE = 256
#: Keys of the raw batch that the datamodule augments after transfer.
RAW_KEYS = ("pixels", "seeds", "sizes")


class SubsetPixels:
    """Every image of a subset, decoded once, padded into one (N, H, W, 3) uint8 array.

    Args:
        subset: a ``solo_diversity.index.Subset``.
        max_side: largest accepted image side.

    Attributes:
        pixels: (N, H, W, 3) uint8 shared-memory tensor; image i in its top-left corner.
        sizes: (N, 2) int64 (height, width) of each image.
        source: (N,) int64: the entry whose image entry i delivers (itself when readable).
        skipped: (N,) int64: unreadable entries passed over to reach it.
        positions: (N,) int64 index positions of the delivered entries.
        targets: (N,) int64 labels of the delivered entries (-1 when unlabeled).

    Raises:
        UserError: when no image is readable, or one is larger than ``max_side``.

    """

    def __init__(self, subset: Any, max_side: int = MAX_SIDE) -> None:
        reader = SubsetReader(subset, decode_image)
        n = len(reader)
        started = time.perf_counter()
        images: list[np.ndarray | None] = []
        for i in range(n):
            try:
                images.append(np.asarray(reader._load(int(reader.positions[i]))))
            except UnreadableImage as err:
                logger.warning(
                    "unreadable image %s (%s); using the next entry",
                    reader.index.entry_name(int(reader.positions[i])),
                    err,
                )
                images.append(None)
        readable = np.array([img is not None for img in images])
        if not readable.any():
            raise UserError(
                f"none of the {n} images in the subset of {reader.index.path} is readable"
            )
        shapes = np.array([img.shape[:2] if img is not None else (0, 0) for img in images])
        height, width = (int(v) for v in shapes.max(axis=0))
        if max(height, width) > max_side:
            raise UserError(
                f"data.augment_backend=batch keeps small images decoded in memory (sides up to "
                f"{max_side} px); this subset has images up to {width}x{height}: use "
                "data.augment_backend=fast"
            )
        self.pixels = torch.zeros(n, height, width, 3, dtype=torch.uint8).share_memory_()
        store = self.pixels.numpy()
        for i, img in enumerate(images):
            if img is not None:
                store[i, : img.shape[0], : img.shape[1]] = img
        self.sizes = torch.from_numpy(shapes.astype(np.int64))
        # The next readable entry at or after i, wrapping (SubsetReader's rule, vectorised).
        ok = np.flatnonzero(readable)
        after = np.searchsorted(ok, np.arange(n))
        source = ok[after % len(ok)]
        self.source = torch.from_numpy(source.astype(np.int64))
        self.skipped = torch.from_numpy((source - np.arange(n)) % n)
        self.positions = torch.from_numpy(np.asarray(reader.positions, dtype=np.int64)[source])
        self.targets = torch.from_numpy(reader.targets[source])
        logger.info(
            "decoded %d images (%dx%d max, %d unreadable) into memory for the batched path "
            "in %.1f s",
            n,
            width,
            height,
            n - len(ok),
            time.perf_counter() - started,
        )

    def __len__(self) -> int:
        return len(self.source)


def already_collated(batch: Any) -> Any:
    """The DataLoader's collate_fn for :class:`PixelBatchDataset`: batches come out whole."""
    return batch


class PixelBatchDataset(Dataset[Any]):
    """Whole pretraining batches from :class:`SubsetPixels`, in solo-learn's layout.

    Args:
        pixels: the decoded subset.
        transform: a :class:`~solo_diversity.data.batch_augment.BatchAugment`.
        counter: shared read counter.
        on_device: True to hand out raw batches (augmented after transfer), False to augment here.

    ``__getitems__([(entry, seed), ...])`` returns ``[indexes (B,), views, targets (B,)]`` with
    views the list of float crops (B, 3, S, S), or, when ``on_device``, a dict of the uint8
    ``pixels`` (B, H, W, 3), ``seeds`` (B,) and ``sizes`` (B, 2).

    """

    def __init__(
        self, pixels: SubsetPixels, transform: Any, counter: ReadCounter, on_device: bool = False
    ) -> None:
        self.data = pixels
        self.transform = transform
        self.counter = counter
        self.on_device = on_device
        self.ring: BatchRing | None = None  # set by the datamodule for its worker processes

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, keys: list[tuple[int, int]]) -> list[Any]:
        entries = torch.tensor([k[0] for k in keys], dtype=torch.int64)
        seeds = torch.tensor([k[1] for k in keys], dtype=torch.int64)
        source = self.data.source[entries]
        self.counter.add_bad(int(self.data.skipped[entries].sum()))
        self.counter.add_loaded(len(keys))
        pixels, sizes = self.data.pixels[source], self.data.sizes[source]
        if self.on_device:
            views: Any = {"pixels": pixels, "seeds": seeds, "sizes": sizes}
        else:
            slot = ring_slot(self.ring, len(keys))
            if slot is None:
                views = self.transform(pixels, seeds, sizes)
            else:
                assert self.ring is not None
                self.transform(pixels, seeds, sizes, out=self.ring.slots[slot])
                views = RingTicket(slot)
        return [self.data.positions[entries], views, self.data.targets[entries]]

    def __getitem__(self, key: tuple[int, int]) -> list[Any]:
        return self.__getitems__([key])
