# SPDX-License-Identifier: MIT
"""Decoded pixels of a small-image subset, served a whole batch or an image at a time.

This module owns the data side of ``data.augment_backend=batch`` and of ``data.in_memory`` (the
per-image backends reading a small subset from memory, as solo-learn's CIFAR datasets hold their
decoded arrays: at 32 px decoding a PNG costs a fifth of a torchvision view, every epoch).
:class:`SubsetPixels` decodes
every entry of a subset once (32-64 px images: CIFAR's 50,000 take a few seconds, 150 MB) into one
shared uint8 array, resolving unreadable entries by the loader's one substitution rule (the next
readable entry in subset order, wrapping; see
:class:`~solo_diversity.data.datasets.SubsetReader`). :class:`PixelBatchDataset` answers a whole
batch of ``(entry, sample seed)`` keys in one ``__getitems__`` call: a gather from that array and
either the augmented views (in DataLoader workers) or the raw uint8 batch with its seeds, which
the datamodule augments on the device after transfer. :class:`PixelImageDataset` hands the same
pixels to a per-image transform, giving the views the streaming dataset gives for the same keys.
Reads are counted exactly as the per-image path counts them (one load per delivered entry, one
bad read per skipped entry), so the bad-image guard and the ledger see the same numbers.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from solo_diversity.data.batch.ring import BatchRing, RingTicket
from solo_diversity.data.datasets import (
    AssembledBatch,
    ReadCounter,
    SubsetReader,
    assemble_batch,
    ring_slot,
    seeded_draws,
)
from solo_diversity.data.decode import decode_image
from solo_diversity.errors import UserError

logger = logging.getLogger(__name__)

#: Largest image side the batched path keeps decoded in memory (it is meant for 32-64 px sets).
MAX_SIDE = 256
#: Keys of the raw batch that the datamodule augments after transfer.
RAW_KEYS = ("pixels", "seeds", "sizes")
#: ``data.in_memory`` values.
IN_MEMORY_MODES = ("auto", "true", "false")
#: ``auto`` keeps a subset in memory when its first image has sides up to this many pixels ...
AUTO_MAX_SIDE = 64
#: ... and the decoded subset fits in this many bytes (CIFAR's 50,000 images take 150 MB,
#: 1.28 million at 32 px 3.9 GB).
AUTO_MAX_BYTES = 4 << 30


class NotSmallImages(UserError):
    """A subset too large to decode into memory (an image side, or the bytes of them all)."""


class SubsetPixels:
    """Every image of a subset, decoded once, padded into one (N, H, W, 3) uint8 array.

    Args:
        subset: a ``solo_diversity.index.Subset``.
        max_side: largest accepted image side.
        max_bytes: largest accepted decoded size (N x H x W x 3 of the padded array); None: any.
        reader: the subset's PIL :class:`SubsetReader`, when the caller has one already (each
            unreadable entry is then named in the log once, whichever of the two read it).

    Attributes:
        pixels: (N, H, W, 3) uint8 shared-memory tensor; image i in its top-left corner.
        sizes: (N, 2) int64 (height, width) of each image.
        source: (N,) int64: the entry whose image entry i delivers (itself when readable).
        skipped: (N,) int64: unreadable entries passed over to reach it.
        positions: (N,) int64 index positions of the delivered entries.
        targets: (N,) int64 labels of the delivered entries (-1 when unlabeled).

    Raises:
        UserError: when no image is readable; NotSmallImages when one is larger than
            ``max_side`` or the array would exceed ``max_bytes``.

    """

    def __init__(
        self,
        subset: Any,
        max_side: int = MAX_SIDE,
        max_bytes: int | None = None,
        reader: SubsetReader[Any] | None = None,
    ) -> None:
        reader = reader if reader is not None else SubsetReader(subset, decode_image)
        n = len(reader)
        started = time.perf_counter()
        decoded = (reader.load_or_none(i) for i in range(n))  # None where unreadable
        images = [None if img is None else np.asarray(img) for img in decoded]
        readable = np.array([img is not None for img in images])
        if not readable.any():
            raise UserError(
                f"none of the {n} images in the subset of {reader.index.path} is readable"
            )
        shapes = np.array([img.shape[:2] if img is not None else (0, 0) for img in images])
        height, width = (int(v) for v in shapes.max(axis=0))
        if max(height, width) > max_side:
            raise NotSmallImages(
                f"data.augment_backend=batch and data.in_memory keep small images decoded in "
                f"memory (sides up to {max_side} px); this subset has images up to "
                f"{width}x{height}: use data.augment_backend=fast with data.in_memory=false"
            )
        if max_bytes is not None and n * height * width * 3 > max_bytes:
            raise NotSmallImages(
                f"{n} images of up to {width}x{height} take {n * height * width * 3 / 2**30:.1f} "
                f"GiB decoded, more than {max_bytes / 2**30:.1f} GiB"
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
        transform: a :class:`~solo_diversity.data.batch.augment.BatchAugment`.
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


def in_memory_mode(value: Any) -> str:
    """``data.in_memory`` as one of :data:`IN_MEMORY_MODES` (YAML's true/false accepted)."""
    if isinstance(value, bool):
        mode = "true" if value else "false"
    else:
        mode = str(value).lower()
    if mode not in IN_MEMORY_MODES:
        raise UserError(f"unknown data.in_memory {value!r}; valid: {', '.join(IN_MEMORY_MODES)}")
    return mode


def memory_pixels(subset: Any, mode: Any) -> SubsetPixels | None:
    """The subset decoded into memory when ``data.in_memory`` asks for it, else None.

    ``true`` always (images up to :data:`MAX_SIDE` px); ``false`` never; ``auto`` when the first
    image has sides up to :data:`AUTO_MAX_SIDE` px and the whole subset fits in
    :data:`AUTO_MAX_BYTES` (a larger image found while decoding falls back to streaming).
    """
    mode = in_memory_mode(mode)
    if mode == "false":
        return None
    if mode == "true":
        return SubsetPixels(subset)
    reader = SubsetReader(subset, decode_image)
    width, height = reader.read(0).value.size
    if max(width, height) > AUTO_MAX_SIDE or len(subset) * width * height * 3 > AUTO_MAX_BYTES:
        return None
    try:
        return SubsetPixels(subset, max_side=MAX_SIDE, max_bytes=AUTO_MAX_BYTES, reader=reader)
    except NotSmallImages as err:
        logger.info("data.in_memory=auto: streaming the subset instead (%s)", err)
        return None


class PixelImageDataset(Dataset[Any]):
    """Pretraining items of a per-image transform over :class:`SubsetPixels` (data.in_memory).

    Args:
        pixels: the decoded subset.
        transform: a ``MultiViewTransform`` (given a PIL image) or ``FastMultiView`` (given the
            (H, W, 3) uint8 pixels through its ``from_hwc``).
        counter: shared read counter.

    Items, keys, seeds and the substitution of unreadable entries are those of
    :class:`~solo_diversity.data.datasets.PretrainDataset` over the same subset, so a key gives
    the same views from memory as from the index (the same decoded pixels, the same draws).

    """

    def __init__(self, pixels: SubsetPixels, transform: Any, counter: ReadCounter) -> None:
        self.data = pixels
        self.transform = transform
        self.counter = counter
        self.ring: BatchRing | None = None  # set by the datamodule for its worker processes
        self._from_hwc = getattr(transform, "from_hwc", None)
        # NumPy views for the per-item look-ups (a torch scalar index costs ~5 us, NumPy's 0.1).
        self._pixels = pixels.pixels.numpy()
        # Per entry: the entry it delivers, that image's height and width, its index position.
        sizes = pixels.sizes[pixels.source]
        self._rows = torch.stack(
            [pixels.source, sizes[:, 0], sizes[:, 1], pixels.positions], dim=1
        ).numpy()
        self._targets, self._skipped = pixels.targets.numpy(), pixels.skipped.numpy()

    def __len__(self) -> int:
        return len(self.data)

    def _item(
        self, entry: int, outputs: list[torch.Tensor] | None, b: int
    ) -> tuple[int, list[torch.Tensor], int]:
        """Entry ``entry``'s (position, views, target); reads are counted by the callers."""
        source, height, width, position = (int(v) for v in self._rows[entry])
        hwc = self._pixels[source, :height, :width]
        outs = None if outputs is None else [o[b] for o in outputs]
        if self._from_hwc is not None:
            views = self._from_hwc(torch.from_numpy(np.ascontiguousarray(hwc)), outs)
        else:
            views = self.transform(Image.fromarray(hwc))
            if outs is not None:
                for out, view in zip(outs, views, strict=True):
                    out.copy_(view)
        return position, views, int(self._targets[entry])

    def _count(self, entries: list[int]) -> None:
        self.counter.add_bad(int(self._skipped[entries].sum()))
        self.counter.add_loaded(len(entries))

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[int, list[torch.Tensor], int]:
        entry, seed = key if isinstance(key, tuple) else (int(key), None)
        self._count([entry])
        with seeded_draws(seed) if seed is not None else contextlib.nullcontext():
            return self._item(entry, None, 0)

    def __getitems__(self, keys: list[Any]) -> AssembledBatch:
        entries = [k[0] if isinstance(k, tuple) else int(k) for k in keys]
        self._count(entries)
        return assemble_batch(keys, self.ring, lambda b, out: self._item(entries[b], out, b))
