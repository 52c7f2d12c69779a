# SPDX-License-Identifier: MIT
"""The loader benchmark's rows: how each loader is built and how long it is timed.

This module owns the measurement of one row (:func:`timed_rate`: images/s over whole batches after
each epoch's warm-up round of one batch per worker, epochs repeated until a :class:`Budget` is
met) and the loaders of every row but the baseline (:mod:`~bench.loader_baseline`):
our datamodule with ``data.augment_backend`` torchvision, fast or batch (the batched small-image
path, :class:`~solo_diversity.data.batch.augment.BatchAugment`, in the workers or on a GPU after
the transfer), ``data.format=dali`` on the CPU or GPU (a first epoch that screens every image,
then later epochs with cached verdicts), and decode-only on one core. A row that cannot be
measured comes back as a :class:`Row` without a rate and with the reason.
"""

from __future__ import annotations

import gc
import io
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader

from solo_diversity.data.augment import AugmentationSpec


@dataclass(frozen=True)
class Budget:
    """How long a row is timed: until ``min_images`` and ``min_seconds`` are both reached, or
    ``max_seconds`` has passed (warm-up batches and epoch starts excluded from both).
    """

    min_images: int
    min_seconds: float
    max_seconds: float

    def done(self, images: int, seconds: float) -> bool:
        """Whether a row that timed ``images`` in ``seconds`` may stop."""
        enough = images >= self.min_images and seconds >= self.min_seconds
        return enough or seconds >= self.max_seconds


#: One whole epoch, whatever it takes (DALI's first, screening epoch).
ONE_EPOCH = Budget(min_images=2**62, min_seconds=math.inf, max_seconds=math.inf)


@dataclass
class Row:
    """One measured loader.

    Attributes:
        key: short id, e.g. ``"a"``, ``"b_fast"``, ``"c_first"``.
        loader: what was measured, in words.
        images_per_s: source images per second (each with all its views), None when not measured.
        note: why a row has no rate, or a remark on it.
        rounds: the rate of every round when the row was measured several times.

    """

    key: str
    loader: str
    images_per_s: float | None
    note: str = ""
    rounds: tuple[float, ...] = ()


def timed_rate(
    epoch_batches: Callable[[int], Iterable[Any]],
    budget: Budget,
    *,
    warmup: int = 1,
    first_epoch: int = 0,
    max_epochs: int | None = None,
) -> float:
    """Images/s of a loader over epochs ``first_epoch, first_epoch + 1, ...``.

    In every epoch the first ``warmup`` batches are not counted and the clock starts when the last
    of them arrives: with W workers the first W batches are made at the same time (one per
    worker, while the workers start), so counting any of them after the clock starts would
    overstate the rate of a short epoch. A batch's size is ``len(batch[0])`` (the indexes of
    solo-learn's ``[indexes, views, targets]``).

    Args:
        epoch_batches: epoch number -> an iterable of that epoch's batches.
        budget: when to stop.
        warmup: batches of each epoch before the clock starts (at least 1; use the worker count).
        first_epoch: the first epoch drawn.
        max_epochs: at most this many epochs (None: as many as the budget needs).

    Returns:
        Images per second over the timed batches.

    Raises:
        ValueError: when an epoch holds no batch after its warm-up (nothing would be timed).

    """
    warmup = max(1, warmup)
    images, seconds, epoch = 0, 0.0, first_epoch
    while max_epochs is None or epoch < first_epoch + max_epochs:
        start, taken = 0.0, -1
        for taken, batch in enumerate(epoch_batches(epoch)):
            if taken < warmup:
                start = time.perf_counter()
                continue
            images += len(batch[0])
            if budget.done(images, seconds + time.perf_counter() - start):
                break
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if taken < warmup:
            raise ValueError(
                f"epoch {epoch} gave {taken + 1} batch(es), no more than its {warmup} warm-up "
                "batch(es); use more images or a smaller batch"
            )
        seconds += time.perf_counter() - start
        epoch += 1
        if budget.done(images, seconds):
            break
    return images / max(seconds, 1e-9)


def measure(key: str, label: str, rate: Callable[[], float | tuple[float, str]]) -> Row:
    """A row from ``rate()`` (images/s, or images/s and a note); any failure becomes a row
    without a rate giving its error line.
    """
    try:
        value = rate()
    except Exception as err:  # noqa: BLE001 - one failed row must not stop the others
        return Row(key, label, None, failure_note(err))
    finally:
        gc.collect()  # shut down the loader's workers before the next row starts its own
    if isinstance(value, tuple):
        return Row(key, label, value[0], value[1])
    return Row(key, label, value)


def failure_note(err: BaseException) -> str:
    """``"not measured: <Type>: <first line of the message>"``."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Caught "):  # a DataLoader worker's re-raised error
        return f"not measured: {lines[-1].strip()}"
    return f"not measured: {type(err).__name__}" + (f": {lines[0]}" if lines else "")


def loader_rate(loader: DataLoader[Any], budget: Budget) -> float:
    """Images/s of a DataLoader that reshuffles itself every epoch (baseline (a))."""
    return timed_rate(lambda epoch: loader, budget, warmup=max(1, loader.num_workers))


def datamodule_rate(
    subset: Any,
    transform: Any,
    batch_size: int,
    workers: int,
    budget: Budget,
    device: str | None = None,
    in_memory: str = "auto",
) -> tuple[float, float]:
    """Images/s of our :class:`~solo_diversity.data.PretrainDataModule` with ``transform``.

    Args:
        subset: the index subset.
        transform: the multi-view transform (``MultiViewTransform``, ``FastMultiView`` or
            ``BatchAugment``).
        batch_size: B.
        workers: DataLoader workers.
        budget: when to stop.
        device: for a ``BatchAugment``: augment on this device (e.g. ``"cuda"``) after moving
            each raw batch there, as a run with ``data.batch_augment_on=device`` does; None
            augments in the workers.
        in_memory: ``data.in_memory`` for a per-image transform (``auto``, a run's default:
            small images are decoded into memory when the datamodule is built).

    Returns:
        ``(images per second, seconds to build the datamodule)``; the batched path (and a
        per-image one with the subset in memory) decodes the whole subset while it is built.

    """
    from lightning.fabric.utilities.apply_func import move_data_to_device

    from solo_diversity.data import PretrainDataModule

    start = time.perf_counter()
    dm = PretrainDataModule(
        subset,
        transform,
        batch_size=batch_size,
        num_workers=workers,
        seed=0,
        augment_on_device=device is not None,
        in_memory=in_memory,
    )
    setup = time.perf_counter() - start
    loader = dm.train_dataloader()

    def epoch_batches(epoch: int) -> Iterable[Any]:
        dm.sampler.set_epoch(epoch)
        if device is None:
            return loader
        return (dm.on_after_batch_transfer(move_data_to_device(b, device), 0) for b in loader)

    return timed_rate(epoch_batches, budget, warmup=max(1, workers)), setup


def batch_augment(
    specs: Sequence[AugmentationSpec], mean: Sequence[float], std: Sequence[float]
) -> Any:
    """A :class:`~solo_diversity.data.batch.augment.BatchAugment` (ImportError until it exists)."""
    from solo_diversity.data.batch.augment import BatchAugment

    return BatchAugment(specs, mean, std)


def batch_unavailable() -> str | None:
    """Why the batched path cannot be imported, or None when it can."""
    try:
        from solo_diversity.data.batch.augment import BatchAugment  # noqa: F401
    except Exception as err:  # noqa: BLE001 - ImportError, or the module failing as it loads
        return f"not available: {type(err).__name__}: {err}"
    return None


def dali_rates(
    subset: Any,
    specs: Sequence[AugmentationSpec],
    mean: Sequence[float],
    std: Sequence[float],
    device: str,
    batch_size: int,
    workers: int,
    budget: Budget,
    cache: Path,
) -> tuple[float, float]:
    """Our ``data.format=dali`` path from a cold screening cache: images/s of its first epoch
    (every image screened once by the feed) and of the later ones (verdicts cached).

    Args:
        subset: the index subset.
        specs: the resolved augmentations.
        mean: per-channel means.
        std: per-channel standard deviations.
        device: ``"cpu"`` or ``"gpu"``.
        batch_size: B.
        workers: feed processes and DALI threads (at least 1 thread).
        budget: when to stop timing the later epochs.
        cache: the screening cache file (deleted first).

    Returns:
        ``(first_epoch, later_epochs)`` images per second.

    """
    from solo_diversity.data.dali.loader import DaliPretrainDataModule

    cache.unlink(missing_ok=True)
    dm = DaliPretrainDataModule(
        subset,
        specs,
        mean,
        std,
        device=device,
        num_threads=max(1, workers),
        batch_size=batch_size,
        num_workers=workers,
        seed=0,
        screen_cache=cache,
    )

    def epoch_batches(epoch: int) -> Iterable[Any]:
        dm.sampler.set_epoch(epoch)
        return dm.train_batches()

    try:
        warmup = max(1, workers)
        first = timed_rate(epoch_batches, ONE_EPOCH, warmup=warmup, max_epochs=1)
        later = timed_rate(epoch_batches, budget, warmup=warmup, first_epoch=1)
    finally:
        dm.teardown("fit")
    return first, later


def decode_rate(files: Sequence[Path], limit: int) -> float:
    """Decode-only images/s of one core (PIL + libjpeg-turbo): the per-core ceiling.

    Args:
        files: JPEG files.
        limit: at most this many are decoded (read into memory first).

    Returns:
        Images per second.

    """
    data = [f.read_bytes() for f in files[:limit]]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        for blob in data:
            Image.open(io.BytesIO(blob)).convert("RGB")
        return len(data) / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
