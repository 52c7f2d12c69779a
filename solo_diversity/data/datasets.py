# SPDX-License-Identifier: MIT
"""Map-style datasets over an index subset, and the process-shared count of unreadable images.

This module owns reading an entry (``Subset`` position -> bytes -> RGB image -> views) for
pretraining (:class:`PretrainDataset`, solo-learn's ``(index, [crops], target)`` items) and for
evaluation (:class:`ClassificationDataset`, ``(image, target)``), plus :func:`eval_transform`.
An unreadable entry is logged once, counted in a :class:`ReadCounter` that DataLoader workers share
with the parent, and replaced by the next readable entry in subset order, so a batch is never short.
A pretraining item asked for with a sample seed (``dataset[(i, seed)]``) draws its augmentations
from torch's RNG seeded with it alone (:func:`seeded_draws`), whatever process or worker reads it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from solo_diversity.data.batch.ring import BatchRing, RingTicket
from solo_diversity.data.decode import UnreadableImage, decode_image
from solo_diversity.errors import UserError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ReadCounter:
    """Counts of images decoded (``loaded``) and unreadable (``bad``), shared across processes.

    Create it in the parent process. The counts live in one lock-free shared-memory array with a
    slot per process: slot 0 for the process that created it (or any non-worker), slot k + 1 for
    DataLoader worker k. Each process only writes its own slot and readers sum them, so the parent
    sees the workers' counts under any start method (fork, spawn, forkserver).

    Args:
        slots: number of slots, at least ``num_workers + 1`` of every DataLoader that uses it.

    """

    def __init__(self, slots: int = 65) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.slots = slots
        self._counts = multiprocessing.RawArray("q", 2 * slots)  # [loaded_0, bad_0, loaded_1, ...]

    def _slot(self) -> int:
        info = torch.utils.data.get_worker_info()
        slot = 0 if info is None else info.id + 1
        if slot >= self.slots:
            raise RuntimeError(
                f"ReadCounter has {self.slots} slots but DataLoader worker {slot - 1} needs one; "
                "create it with slots >= num_workers + 1"
            )
        return slot

    @property
    def loaded(self) -> int:
        """Images decoded successfully so far (substitutes included)."""
        return int(sum(self._counts[0::2]))

    @property
    def bad(self) -> int:
        """Decode failures so far (an entry counts each time it is read)."""
        return int(sum(self._counts[1::2]))

    @property
    def bad_fraction(self) -> float:
        """Share of reads that failed, bad / (bad + loaded); 0.0 before any read."""
        bad, loaded = self.bad, self.loaded
        return bad / (bad + loaded) if bad + loaded else 0.0

    def add_loaded(self, count: int = 1) -> None:
        self._counts[2 * self._slot()] += count

    def add_bad(self, count: int = 1) -> None:
        if count:
            self._counts[2 * self._slot() + 1] += count


class EntryRead(NamedTuple, Generic[T]):
    """One delivered entry: position, loaded value, target, and the unreadable entries skipped."""

    position: int
    value: T
    target: int
    skipped: int


class SubsetReader(Generic[T]):
    """Reads subset entries, substituting the next readable one (wrapping) for unreadable ones.

    The one substitution rule of every loader (torchvision and DALI feeds alike), so that both
    skip the same entries and deliver the same positions.

    Args:
        subset: a ``solo_diversity.index.Subset``.
        load: encoded bytes -> value; raises :class:`UnreadableImage` for an unusable image.

    """

    def __init__(self, subset: Any, load: Callable[[bytes], T]) -> None:
        self.index = subset.index
        positions = subset.positions  # a range stays a range (no N-sized array for a prefix)
        self.positions = positions if isinstance(positions, range) else np.asarray(positions)
        self.targets = np.asarray(subset.labels(), dtype=np.int64)
        if len(self.targets) != len(self.positions):
            raise ValueError("subset.labels() and subset.positions differ in length")
        self.load = load
        self._warned: set[int] = set()  # per process: warn once per entry

    def __len__(self) -> int:
        return len(self.positions)

    def _load(self, position: int) -> T:
        try:
            data = self.index.read_bytes(position)
        except OSError as err:  # a missing or unreadable file of a paths index
            raise UnreadableImage(f"{type(err).__name__}: {err}") from err
        return self.load(data)

    def load_or_none(self, j: int) -> T | None:
        """Entry j's value, or None when it is unreadable (named in the log once per process)."""
        position = int(self.positions[j])
        try:
            return self._load(position)
        except UnreadableImage as err:
            if position not in self._warned:
                self._warned.add(position)
                name = self.index.entry_name(position)
                logger.warning("unreadable image %s (%s); using the next entry", name, err)
            return None

    def read(self, i: int) -> EntryRead[T]:
        """Entry i of the subset, or the first readable entry after it in subset order."""
        n = len(self.positions)
        if not 0 <= i < n:
            raise IndexError(f"entry {i} out of range for a subset of {n}")
        for step in range(n):
            j = (i + step) % n
            value = self.load_or_none(j)
            if value is not None:
                return EntryRead(int(self.positions[j]), value, int(self.targets[j]), step)
        raise UserError(f"none of the {n} images in the subset of {self.index.path} is readable")


#: Images up to this many pixels (96 x 96) are copied out of their decoder object (see below).
SMALL_IMAGE_PIXELS = 96 * 96


class _DecodeThen(Generic[T]):
    """bytes -> PIL decode -> transform (a class, not a lambda: spawned workers pickle it)."""

    def __init__(self, transform: Callable[[Image.Image], T]) -> None:
        self.transform = transform

    def __call__(self, data: bytes) -> T:
        img = decode_image(data)
        if img.width * img.height <= SMALL_IMAGE_PIXELS:
            # A decoded file object re-checks its lazy loading on every PIL call; for a small
            # image a plain copy is cheaper than those checks (~15% of a 32 px view's time).
            img = img.copy()
        return self.transform(img)


class AssembledBatch(list):
    """A batch that a dataset's ``__getitems__`` already stacked (collate passes it through)."""


def ring_slot(ring: BatchRing | None, batch_size: int) -> int | None:
    """A free slot of ``ring`` for a batch of ``batch_size`` made in a DataLoader worker, or None.

    None outside workers (nothing crosses processes), when the batch is not the ring's size, or
    when no slot frees up in time (the batch is then allocated as usual).
    """
    if ring is None or torch.utils.data.get_worker_info() is None:
        return None
    if ring.slots[0][0].shape[0] != batch_size:
        return None
    return ring.acquire()


def batch_empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised batch tensor, in shared memory when called in a DataLoader worker.

    A worker sends its batches to the main process through shared memory; allocating them there
    (as ``default_collate`` does) saves copying every batch once more when it is sent.
    """
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    numel = math.prod(shape)
    storage = torch.UntypedStorage._new_shared(numel * dtype.itemsize)
    return torch.empty(0, dtype=dtype).set_(storage).view(shape)


ItemInto = Callable[[int, "list[torch.Tensor] | None"], "tuple[int, list[torch.Tensor], int]"]


def assemble_batch(keys: Sequence[Any], ring: BatchRing | None, item: ItemInto) -> AssembledBatch:
    """Solo-learn's batch ``[indexes, views, targets]`` from per-item reads, views written in place.

    ``item(b, outputs)`` reads the b-th key (under its sample seed, set here) and returns
    ``(position, views, target)``, writing view k into ``outputs[k][b]`` when outputs are given.
    The outputs are a ring slot when a worker gets one (the views then travel as its ticket), else
    (B, ...) tensors allocated once the first item shows the views' shapes (in shared memory inside
    a worker, where the DataLoader would otherwise copy every stacked batch there).
    """
    slot = ring_slot(ring, len(keys))
    outputs = None if ring is None or slot is None else ring.slots[slot]
    indexes, targets = [], []
    for b, key in enumerate(keys):
        seed = key[1] if isinstance(key, tuple) else None
        with seeded_draws(seed) if seed is not None else contextlib.nullcontext():
            position, views, target = item(b, outputs)
        if outputs is None:
            outputs = [batch_empty((len(keys), *v.shape), v.dtype) for v in views]
            for out, view in zip(outputs, views, strict=True):
                out[0].copy_(view)
        indexes.append(position)
        targets.append(target)
    assert outputs is not None
    return AssembledBatch(
        [
            torch.tensor(indexes, dtype=torch.long),
            outputs if slot is None else RingTicket(slot),
            torch.tensor(targets, dtype=torch.long),
        ]
    )


class _CountedReader(Generic[T]):
    """A :class:`SubsetReader` that decodes with PIL, transforms, and counts into a ReadCounter."""

    def __init__(
        self,
        subset: Any,
        transform: Callable[[Image.Image], T],
        counter: ReadCounter | None = None,
    ) -> None:
        # A transform that decodes bytes itself (the fast path's from_bytes) skips the PIL image.
        load = getattr(transform, "from_bytes", None) or _DecodeThen(transform)
        self.transform = transform
        self.reader = SubsetReader(subset, load)
        self.counter = counter if counter is not None else ReadCounter()

    def __len__(self) -> int:
        return len(self.reader)

    def read(self, i: int) -> tuple[int, T, int]:
        """(index position, transformed image, target) of entry i or of its substitute."""
        entry = self.reader.read(i)
        self.counter.add_bad(entry.skipped)
        self.counter.add_loaded()
        return entry.position, entry.value, entry.target


@contextlib.contextmanager
def seeded_draws(seed: int) -> Iterator[None]:
    """Inside: torch's CPU RNG starts from ``seed``; after: it is back where it was.

    The augmentations (torchvision's and the fast path's) draw from torch's default CPU
    generator; seeding it per sample makes the views a function of the sample's key, and restoring
    it keeps the caller's stream (e.g. the training process's, when ``num_workers=0``) untouched.
    A DataLoader worker's generator serves its samples only, so there it is seeded and left.
    """
    if torch.utils.data.get_worker_info() is not None:
        torch.default_generator.manual_seed(seed)
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


class PretrainDataset(Dataset[tuple[int, list[torch.Tensor], int]]):
    """Pretraining items in solo-learn's layout: ``(index_position, [crop_0, ...], target)``.

    Args:
        subset: a ``solo_diversity.index.Subset``; item i is its i-th entry.
        transform: image -> list of views (a :class:`~solo_diversity.data.MultiViewTransform`).
        counter: shared read counter (a fresh one when None).

    Item i is ``(subset.positions[i], transform(image), label)``, label -1 when unlabeled. An
    unreadable entry is replaced by the next readable one in subset order (wrapping), with that
    entry's position and label. The key is an entry i, or ``(i, seed)`` to draw the views from
    ``seed`` (see :func:`seeded_draws`; :class:`~solo_diversity.data.sampler.StepBatches` hands
    these out).

    """

    def __init__(
        self,
        subset: Any,
        transform: Callable[[Image.Image], list[torch.Tensor]],
        counter: ReadCounter | None = None,
    ) -> None:
        self._reader: _CountedReader[list[torch.Tensor]] = _CountedReader(
            subset, transform, counter
        )
        self.ring: BatchRing | None = None  # set by the datamodule for its worker processes

    @property
    def counter(self) -> ReadCounter:
        return self._reader.counter

    def __len__(self) -> int:
        return len(self._reader)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[int, list[torch.Tensor], int]:
        if isinstance(key, tuple):
            entry, seed = key
            with seeded_draws(seed):
                return self._reader.read(entry)
        return self._reader.read(key)

    def __getitems__(self, keys: list[Any]) -> AssembledBatch:
        """A whole batch, read in one HDF5 call and written straight into the batch tensors.

        The DataLoader calls this instead of ``__getitem__`` per key. Item b's views equal
        ``self[keys[b]]``'s (same seed, same substitution of unreadable entries); they are written
        into (B, ...) tensors allocated once per batch (see :func:`assemble_batch`).
        """
        reader = self._reader.reader
        entries = [k[0] if isinstance(k, tuple) else int(k) for k in keys]
        datas = reader.index.read_many([int(reader.positions[e]) for e in entries])

        def item(b: int, outputs: list[torch.Tensor] | None) -> tuple[int, list[torch.Tensor], int]:
            return self._read_from(entries[b], datas[b], outputs, b)

        return assemble_batch(keys, self.ring, item)

    def _read_from(
        self, entry: int, data: bytes | OSError, outputs: list[torch.Tensor] | None, b: int
    ) -> tuple[int, list[torch.Tensor], int]:
        """Entry ``entry`` from its bytes already read; its views go into ``outputs[k][b]``."""
        reader = self._reader
        load = reader.reader.load
        if isinstance(data, bytes):
            try:
                if outputs is not None and hasattr(reader.transform, "from_bytes_into"):
                    views = reader.transform.from_bytes_into(data, [o[b] for o in outputs])
                else:
                    views = load(data)
                    if outputs is not None:
                        for out, view in zip(outputs, views, strict=True):
                            out[b].copy_(view)
            except UnreadableImage:
                pass
            else:
                reader.counter.add_loaded()
                position = int(reader.reader.positions[entry])
                return position, views, int(reader.reader.targets[entry])
        # Unreadable (or a missing file): the one substitution rule, which counts its reads.
        position, views, target = reader.read(entry)
        if outputs is not None:
            for out, view in zip(outputs, views, strict=True):
                out[b].copy_(view)
        return position, views, target


class ClassificationDataset(Dataset[tuple[torch.Tensor, int]]):
    """Evaluation items ``(image (3, H, W), target)``; unreadable entries are handled as above."""

    def __init__(
        self,
        subset: Any,
        transform: Callable[[Image.Image], torch.Tensor],
        counter: ReadCounter | None = None,
    ) -> None:
        self._reader: _CountedReader[torch.Tensor] = _CountedReader(subset, transform, counter)

    @property
    def counter(self) -> ReadCounter:
        return self._reader.counter

    def __len__(self) -> int:
        return len(self._reader)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        _, img, target = self._reader.read(i)
        return img, target


def default_crop_fraction(size: int) -> float:
    """0.875 from 128 px up (ImageNet's Resize(256) + CenterCrop(224)); 1.0 for CIFAR-sized data."""
    return 0.875 if size >= 128 else 1.0


def eval_transform(
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    crop_fraction: float | None = None,
) -> Callable[[Image.Image], torch.Tensor]:
    """Deterministic evaluation view: resize the short side, center-crop ``size``, normalise.

    The short side goes to ``round(size / crop_fraction)`` (bilinear). By default ``crop_fraction``
    is 0.875 for ``size >= 128`` (ImageNet's Resize(256) + CenterCrop(224), as solo-learn) and 1.0
    below (CIFAR-sized data: a 32-px image at size 32 passes through unchanged).

    Args:
        size: output side in pixels.
        mean: 3 per-channel means for normalisation.
        std: 3 per-channel standard deviations.
        crop_fraction: share of the resized short side kept by the center crop, in (0, 1].

    Returns:
        A callable from an RGB PIL image to a float32 tensor (3, size, size).

    """
    if crop_fraction is None:
        crop_fraction = default_crop_fraction(size)
    if not 0.0 < crop_fraction <= 1.0:
        raise UserError(f"crop_fraction must be in (0, 1], got {crop_fraction!r}")
    return v2.Compose(
        [
            v2.Resize(round(size / crop_fraction), interpolation=v2.InterpolationMode.BILINEAR),
            v2.CenterCrop(size),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
            v2.ToPureTensor(),
        ]
    )


def probe_train_transform(
    size: int, mean: Sequence[float], std: Sequence[float]
) -> Callable[[Image.Image], torch.Tensor]:
    """The probe's training view (solo-learn's linear training): RRC(size, 0.08-1) + flip.

    Bilinear, torchvision's default, which solo-learn's linear transforms keep (its pretraining
    crops are bicubic).

    Returns:
        A callable from an RGB PIL image to a float32 tensor (3, size, size).

    """
    return v2.Compose(
        [
            v2.RandomResizedCrop(
                size, scale=(0.08, 1.0), interpolation=v2.InterpolationMode.BILINEAR
            ),
            v2.RandomHorizontalFlip(),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
            v2.ToPureTensor(),
        ]
    )
