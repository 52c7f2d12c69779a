# SPDX-License-Identifier: MIT
"""Perceptual-hash deduplication, within the crawl and against reference indexes.

Web results repeat: the same photo resized, re-encoded or hosted twice, and, worse, the very images
of an evaluation set. Each image gets a 64-bit ``imagehash.phash``; two images are the same when
their hashes differ in at most ``distance`` bits (Hamming distance). The search is exact and fast:
by the pigeonhole principle, two 64-bit hashes within ``d`` bits agree exactly on at least one of
``d + 1`` disjoint bands, so candidates are looked up by band value and then checked in full.

:func:`within` keeps the first of each group in the given (priority) order; :func:`matches`
marks the images that have a match in a reference set (a test set must not leak into training).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from solo_diversity.builders.web.validate import phash_hex

log = logging.getLogger(__name__)

REFERENCE_BLOCK = 256  # reference images read, then hashed in parallel, at a time


def from_hex(values: Sequence[str]) -> np.ndarray:
    """(N,) uint64 hashes from 16-hex-digit strings."""
    return np.array([int(v, 16) for v in values], dtype=np.uint64)


def _bands(distance: int) -> list[tuple[int, int]]:
    """``distance + 1`` disjoint (shift, width) bit bands covering the 64 bits."""
    if not 0 <= distance < 64:
        raise ValueError(f"hash distance must be in 0..63, got {distance}")
    count = distance + 1
    edges = [round(64 * i / count) for i in range(count + 1)]
    return [(lo, hi - lo) for lo, hi in zip(edges, edges[1:], strict=False)]


class BandIndex:
    """Hashes indexed by band value, for exact Hamming-radius look-ups."""

    def __init__(self, distance: int) -> None:
        self.distance = distance
        self._bands = _bands(distance)
        self._tables: list[dict[int, list[int]]] = [{} for _ in self._bands]
        self._hashes: list[int] = []

    def _keys(self, value: int) -> list[int]:
        return [(value >> shift) & ((1 << width) - 1) for shift, width in self._bands]

    def add(self, value: int) -> int:
        """Add a hash; return its id (ids count from 0)."""
        ident = len(self._hashes)
        self._hashes.append(value)
        for table, key in zip(self._tables, self._keys(value), strict=True):
            table.setdefault(key, []).append(ident)
        return ident

    def nearest(self, value: int) -> int:
        """The id of the first-added hash within ``distance`` bits of ``value``, or -1."""
        best = -1
        for table, key in zip(self._tables, self._keys(value), strict=True):
            for ident in table.get(key, ()):
                if (best < 0 or ident < best) and (
                    (self._hashes[ident] ^ value).bit_count() <= self.distance
                ):
                    best = ident
        return best


def within(hashes: np.ndarray, distance: int) -> np.ndarray:
    """Greedy deduplication in order: each hash is kept unless it is near one kept before it.

    Args:
        hashes: (N,) uint64, in priority order (the best image of a group first).
        distance: the largest Hamming distance that counts as the same image.

    Returns:
        (N,) int64: -1 for a kept hash, else the position of the kept hash it duplicates.
    """
    index = BandIndex(distance)
    kept: list[int] = []  # position of each id added to the index
    duplicate_of = np.full(len(hashes), -1, dtype=np.int64)
    for position, value in enumerate(hashes.tolist()):
        match = index.nearest(value)
        if match >= 0:
            duplicate_of[position] = kept[match]
        else:
            index.add(value)
            kept.append(position)
    return duplicate_of


def matches(hashes: np.ndarray, reference: np.ndarray, distance: int) -> np.ndarray:
    """For each hash, the position of a reference hash within ``distance`` bits, or -1.

    Args:
        hashes: (N,) uint64 hashes of the crawl.
        reference: (M,) uint64 hashes of the reference images.
        distance: the largest Hamming distance that counts as the same image.

    Returns:
        (N,) int64 reference positions (the first match), -1 where none.
    """
    index = BandIndex(distance)
    for value in reference.tolist():
        index.add(value)
    return np.array([index.nearest(v) for v in hashes.tolist()], dtype=np.int64)


def _hash_payload(payload: bytes | None) -> str:
    """The phash of one encoded image, "" when there is none or it does not decode."""
    if payload is None:
        return ""
    try:
        with Image.open(io.BytesIO(payload)) as image:
            return phash_hex(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError):
        return ""


def _payloads(index: Any, lo: int, hi: int) -> list[bytes | None]:
    """Entries lo..hi-1, read in this thread (the index's HDF5 handle is not shared)."""
    out: list[bytes | None] = []
    for position in range(lo, hi):
        try:
            out.append(index.read_bytes(position))
        except OSError as err:
            log.warning("reference %s entry %d unreadable (%s)", index.path, position, err)
            out.append(None)
    return out


def reference_hashes(
    index_path: str | Path, cache: Path, threads: int = 4
) -> tuple[np.ndarray, str]:
    """The phash of every image of an index, cached under ``cache`` by the index's fingerprint.

    Returns:
        ((M,) uint64 hashes in stored order, the index fingerprint). An entry that cannot be read
        or decoded gets no hash (it cannot leak what it does not show).
    """
    from solo_diversity.index.reader import open_index

    index = open_index(index_path)
    cached = cache / f"{index.fingerprint}.npy"
    if cached.is_file():
        return np.load(cached), index.fingerprint
    values: list[str] = []
    with ThreadPoolExecutor(max_workers=threads) as pool:  # Pillow and the DCT release the GIL
        for lo in range(0, len(index), REFERENCE_BLOCK):
            payloads = _payloads(index, lo, min(len(index), lo + REFERENCE_BLOCK))
            values.extend(v for v in pool.map(_hash_payload, payloads) if v)
    index.close()
    hashes = from_hex(values)
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{cached.name}.partial.npy"
    np.save(partial, hashes)
    partial.replace(cached)
    return hashes, index.fingerprint
