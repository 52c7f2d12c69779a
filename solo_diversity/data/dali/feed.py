# SPDX-License-Identifier: MIT
"""The per-sample source that feeds DALI from an index subset, in the epoch sampler's order.

This module owns the Python side of the DALI path. DALI's own file reader cannot follow our
:class:`~solo_diversity.data.EpochSampler` (one permutation per epoch, shared by all ranks,
truncated to whole optimizer steps: what keeps subsets nested and the ledger exact), cannot read an
HDF5 byte index, and stops the pipeline for good at the first image it cannot decode. So path
and byte indexes alike go through ``fn.external_source``: :class:`IndexFeed` runs in DALI's worker
processes, maps ``(epoch, idx_in_epoch)`` to a subset entry, reads its bytes, screens them
(:func:`~solo_diversity.data.decode.dali_ready_bytes`) and substitutes the next readable entry
exactly as the torchvision path does, returning how many it skipped. For pretraining it also
draws each view's random decisions (:func:`~solo_diversity.data.dali.pipeline.view_params`) from
the sample's seed (:meth:`EpochSampler.seeds`, the torchvision path's per-sample key), so DALI's
crops are a function of (seed, pass, position) and a resumed epoch gets the uninterrupted run's.
A :class:`ScreenCache` file remembers each entry's verdict, so an image is screened once, not once
per epoch.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from solo_diversity.data.augment import AugmentationSpec
from solo_diversity.data.child_signals import shield_child
from solo_diversity.data.dali.pipeline import view_params
from solo_diversity.data.datasets import SubsetReader, seeded_draws
from solo_diversity.data.decode import UnreadableImage, dali_ready_bytes
from solo_diversity.data.sampler import EpochSampler

UNKNOWN, NATIVE, TRANSCODE, BAD = 0, 1, 2, 3


class ScreenCache:
    """Screening verdicts per index position, in a uint8 file that all processes map.

    ``UNKNOWN`` (not screened yet), ``NATIVE`` (DALI reads the stored bytes as they are),
    ``TRANSCODE`` (decode with Pillow and re-encode on every read) or ``BAD``. The verdict is a
    pure function of the stored bytes, so concurrent writers agree and an interrupted run leaves a
    valid file.

    Args:
        path: the cache file; created (all ``UNKNOWN``) when missing or of another length.
        size: number of index entries.

    """

    def __init__(self, path: str | Path, size: int) -> None:
        self.path, self.size = Path(path), int(size)
        if not self.path.is_file() or self.path.stat().st_size != self.size:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name)
            with os.fdopen(fd, "wb") as handle:
                handle.truncate(self.size)
            os.replace(tmp, self.path)
        self._map: np.memmap | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "_map": None}

    @property
    def verdicts(self) -> np.memmap:
        """The (size,) uint8 map, opened lazily in each process."""
        if self._map is None:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r+", shape=(self.size,))
        return self._map

    @staticmethod
    def default_path(index: Any, cache_dir: str | Path | None) -> Path:
        """``<cache_dir>/<dataset>-<fingerprint>.dali-screen`` (temp dir when no cache dir)."""
        folder = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir())
        return folder / f"{index.dataset}-{index.fingerprint[:16]}.dali-screen"


def _as_is(data: bytes) -> bytes:
    return data


class ScreenedReader(SubsetReader[bytes]):
    """A :class:`SubsetReader` whose value is DALI-ready bytes, with verdicts cached per entry."""

    def __init__(self, subset: Any, cache: ScreenCache) -> None:
        super().__init__(subset, _as_is)
        self.cache = cache

    def _load(self, position: int) -> bytes:
        verdicts = self.cache.verdicts
        verdict = int(verdicts[position])
        if verdict == BAD:
            raise UnreadableImage("screened as unreadable earlier")
        try:
            data = self.index.read_bytes(position)
        except OSError as err:  # a missing file is not cached: it may come back
            raise UnreadableImage(f"{type(err).__name__}: {err}") from err
        if verdict == NATIVE:
            return data
        try:
            ready, native = dali_ready_bytes(data)
        except UnreadableImage:
            verdicts[position] = BAD
            raise
        verdicts[position] = NATIVE if native else TRANSCODE
        return ready


@dataclass(frozen=True)
class PaddedSequence:
    """Every entry once in subset order, padded with -1 to whole batches (for probes)."""

    size: int
    batch_size: int

    def indices(self, epoch: int) -> np.ndarray:
        padded = -(-self.size // self.batch_size) * self.batch_size
        order = np.full(padded, -1, dtype=np.int64)
        order[: self.size] = np.arange(self.size)
        return order


def image_size(data: bytes) -> tuple[int, int]:
    """(height, width) of screened encoded bytes, read from the header.

    That is the size DALI decodes them to (EXIF orientation is ignored on both sides).
    """
    # Screened bytes are JPEG or PNG (DALI_NATIVE, or a PNG transcode): skip the other probes.
    width, height = Image.open(io.BytesIO(data), formats=("JPEG", "PNG")).size
    return height, width


class IndexFeed:
    """``fn.external_source`` callable: sample ``(epoch, i)`` -> (bytes, position, label, skipped,
    one :func:`~solo_diversity.data.dali.pipeline.view_params` row per view).

    Args:
        subset: the ``solo_diversity.index.Subset`` to read.
        order: an :class:`EpochSampler` (this rank's shuffled entries per epoch) or a
            :class:`PaddedSequence`; ``order.indices(epoch)`` gives subset entries, -1 = padding.
        cache: the screening cache.
        first_epoch: the sampler epoch of DALI's epoch 0 (a resumed run starts later).
        skip: samples of ``first_epoch`` already trained on (a run resumed mid-epoch); DALI's
            epoch 0 then holds only the rest of it.
        views: one spec per output view (``view_specs``); their parameters are drawn from the
            sample's seed, ``order.seeds(epoch)`` (an :class:`EpochSampler` is then required).
            None: no parameter rows (the probe).

    A padding sample repeats the first readable entry with position -1; callers drop it. An
    unreadable entry's substitute keeps the slot's seed, as on the torchvision path.
    Raising ``StopIteration`` past the end of the order ends DALI's epoch.

    """

    def __init__(
        self,
        subset: Any,
        order: EpochSampler | PaddedSequence,
        cache: ScreenCache,
        first_epoch: int = 0,
        skip: int = 0,
        views: Sequence[AugmentationSpec] | None = None,
    ) -> None:
        self.reader = ScreenedReader(subset, cache)
        self.order = order
        self.first_epoch = int(first_epoch)
        self.skip = int(skip)
        self.views = tuple(views or ())
        if self.views and not isinstance(order, EpochSampler):
            raise TypeError("view parameters need an EpochSampler's per-sample seeds")
        self._epoch = -1
        self._indices = self._seeds = np.empty(0, dtype=np.int64)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_epoch"] = -1
        state["_indices"] = state["_seeds"] = np.empty(0, dtype=np.int64)
        state["_parent"] = os.getpid()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled in a DALI feed process: ignore the run's stop signals, die with the run.

        A feed process is started by the process that pickled the feed; left alone it would be
        killed by a Ctrl-C or SIGTERM sent to the whole process group (a traceback instead of a
        save) and outlive a SIGKILLed run by a minute.
        """
        parent = state.pop("_parent", os.getpid())
        self.__dict__.update(state)
        shield_child(parent)

    def entries(self, epoch: int) -> np.ndarray:
        """Subset entries of a sampler epoch still to feed (cached: every sample of it asks)."""
        if epoch != self._epoch:
            skip = self.skip if epoch == self.first_epoch else 0
            self._indices = np.asarray(self.order.indices(epoch))[skip:]
            if self.views:
                assert isinstance(self.order, EpochSampler)
                self._seeds = np.asarray(self.order.seeds(epoch))[skip:]
            self._epoch = epoch
        return self._indices

    def __call__(self, sample_info: Any) -> tuple[np.ndarray, ...]:
        entries = self.entries(self.first_epoch + int(sample_info.epoch_idx))
        i = int(sample_info.idx_in_epoch)
        if i >= len(entries):
            raise StopIteration
        entry = int(entries[i])
        read = self.reader.read(max(entry, 0))
        out = (
            np.frombuffer(read.value, dtype=np.uint8),
            np.array(read.position if entry >= 0 else -1, dtype=np.int64),
            np.array(read.target, dtype=np.int64),
            np.array(read.skipped if entry >= 0 else 0, dtype=np.int64),
        )
        if not self.views:
            return out
        height, width = image_size(read.value)
        with seeded_draws(int(self._seeds[i])):
            return out + tuple(view_params(spec, height, width) for spec in self.views)
