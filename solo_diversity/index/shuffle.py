# SPDX-License-Identifier: MIT
"""Out-of-core seeded shuffle of a stream of entries, with sequential I/O and bounded memory.

1. **Spool**: the entries are streamed, a batch at a time, into three flat files: payload bytes
   concatenated (``payload.bin``), int64 end offsets (``ends.bin``), int64 labels (``labels.bin``).
2. **Order**: ``dest = numpy.random.default_rng(seed).permutation(n)``; source row ``r`` goes to
   index position ``dest[r]``. This is the one array held in full: 8 bytes per entry (800 MB for
   YFCC100M's 100M entries).
3. **Scatter**: the spool is read sequentially in chunks and every entry is appended to the bucket
   file of its destination range (at most :data:`MAX_BUCKETS` buckets of consecutive positions).
4. **Gather**: bucket by bucket, in position order, the entries are put in place in memory and
   yielded as :class:`Block` s covering positions 0..n-1 in order.

Every file is read and written front to back, so the cost is the same whether the spool sits in the
page cache or on a slow disk, and resident memory is ``8 * n`` bytes plus one bucket. Temporary
disk use peaks near twice the payload plus 48 bytes per entry.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

log = logging.getLogger(__name__)

SPOOL_CHUNK = 1 << 16  # entries per batch while spooling
SCATTER_CHUNK = 1 << 18  # spooled entries read per scatter step
MIN_BUCKET = 1 << 18  # entries per bucket, at least
MAX_BUCKETS = 128  # bucket files open at once (two descriptors each)
YIELD_BLOCK = 1 << 17  # entries per yielded block


@dataclass(frozen=True)
class Spool:
    """The spooled stream: its folder, number of entries and payload bytes."""

    directory: Path
    num_entries: int
    num_bytes: int


@dataclass(frozen=True)
class Block:
    """Consecutive index positions ``lo..hi-1`` with their entries, in position order.

    Attributes:
        lo: first position.
        hi: one past the last position.
        rows: (B,) int64 spool row of each entry (its place in the unshuffled stream).
        lengths: (B,) int64 payload sizes.
        payloads: B encoded entries.
        labels: (B,) int64 labels.

    """

    lo: int
    hi: int
    rows: np.ndarray
    lengths: np.ndarray
    payloads: list[bytes]
    labels: np.ndarray


def _encode_batch(payloads: tuple[str | bytes, ...], kind: str) -> list[bytes]:
    """UTF-8 encode path payloads (undecodable ones become ``b""``); pass bytes through."""
    if kind == "bytes":
        encoded = [p for p in payloads if isinstance(p, bytes)]
        assert len(encoded) == len(payloads), "a bytes source must yield bytes"
        return encoded
    paths = cast("tuple[str, ...]", payloads)  # a path source yields str
    try:
        return [p.encode("utf-8") for p in paths]
    except UnicodeEncodeError:  # rare: undecodable file names; redo one by one
        out = []
        for p in paths:
            try:
                out.append(p.encode("utf-8"))
            except UnicodeEncodeError:
                out.append(b"")
        return out


def spool_entries(entries: Iterable[tuple[str | bytes, int]], kind: str, directory: Path) -> Spool:
    """Stream ``(payload, label)`` pairs into the spool files; skip empty or non-UTF-8 payloads.

    Args:
        entries: the source stream; payloads are ``str`` paths (kind ``paths``) or ``bytes``.
        kind: ``"paths"`` or ``"bytes"``.
        directory: an empty folder for the spool.

    Returns:
        The :class:`Spool`.

    """
    num_entries = num_bytes = skipped = 0
    stream = iter(entries)
    with (
        open(directory / "payload.bin", "wb") as f_payload,
        open(directory / "ends.bin", "wb") as f_ends,
        open(directory / "labels.bin", "wb") as f_labels,
    ):
        while batch := list(itertools.islice(stream, SPOOL_CHUNK)):
            payloads, labels = zip(*batch, strict=True)
            encoded = _encode_batch(payloads, kind)
            label_array = np.asarray(labels, dtype="<i8")
            if b"" in encoded:
                keep = np.array([bool(data) for data in encoded])
                skipped += int((~keep).sum())
                encoded = [data for data in encoded if data]
                label_array = label_array[keep]
                if not encoded:
                    continue
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
            ends = np.cumsum(lengths) + num_bytes
            f_payload.write(b"".join(encoded))
            f_ends.write(ends.astype("<i8").tobytes())
            f_labels.write(label_array.tobytes())
            num_entries += len(encoded)
            num_bytes = int(ends[-1])
    if skipped:
        log.warning("skipped %d entries that were empty or not valid utf-8", skipped)
    return Spool(directory, num_entries, num_bytes)


def bucket_size(n: int) -> int:
    """Entries per bucket: at least :data:`MIN_BUCKET`, few enough for :data:`MAX_BUCKETS`."""
    return max(MIN_BUCKET, -(-n // MAX_BUCKETS))


def _scatter(spool: Spool, dest: np.ndarray, size: int) -> list[tuple[Path, Path]]:
    """Append every spooled entry to the bucket of ``dest[row] // size``; return bucket files.

    A bucket's meta file holds int64 rows ``(dest, row, length, label)``; its payload file the
    entries' bytes in the same order.
    """
    n = spool.num_entries
    buckets = [
        (spool.directory / f"bucket{b:04d}.meta", spool.directory / f"bucket{b:04d}.bin")
        for b in range(-(-n // size))
    ]
    handles = [(open(m, "wb"), open(p, "wb")) for m, p in buckets]
    previous_end = 0
    try:
        with (
            open(spool.directory / "payload.bin", "rb") as f_payload,
            open(spool.directory / "ends.bin", "rb") as f_ends,
            open(spool.directory / "labels.bin", "rb") as f_labels,
        ):
            for lo in range(0, n, SCATTER_CHUNK):
                hi = min(lo + SCATTER_CHUNK, n)
                ends = np.fromfile(f_ends, dtype="<i8", count=hi - lo)
                labels = np.fromfile(f_labels, dtype="<i8", count=hi - lo)
                starts = np.concatenate(([previous_end], ends[:-1]))
                data = f_payload.read(int(ends[-1]) - previous_end)
                chunk_dest = dest[lo:hi]
                which = chunk_dest // size
                order = np.argsort(which, kind="stable")
                rows = np.arange(lo, hi, dtype=np.int64)
                meta = np.stack([chunk_dest, rows, ends - starts, labels], axis=1)[order]
                local_starts = (starts[order] - previous_end).tolist()
                local_ends = (ends[order] - previous_end).tolist()
                bounds = np.searchsorted(which[order], np.arange(len(buckets) + 1))
                for b in np.flatnonzero(np.diff(bounds)):
                    first, last = int(bounds[b]), int(bounds[b + 1])
                    f_meta, f_bin = handles[b]
                    f_meta.write(meta[first:last].astype("<i8").tobytes())
                    pieces = zip(local_starts[first:last], local_ends[first:last], strict=True)
                    f_bin.write(b"".join([data[s:e] for s, e in pieces]))
                previous_end = int(ends[-1])
    finally:
        for f_meta, f_bin in handles:
            f_meta.close()
            f_bin.close()
    return buckets


def shuffled_blocks(spool: Spool, seed: int) -> Iterator[Block]:
    """Yield the spooled entries in the seeded order as consecutive :class:`Block` s.

    Args:
        spool: the spooled stream (its folder also receives the bucket files).
        seed: the shuffle seed.

    Yields:
        Blocks covering positions 0..n-1 in order; position ``dest[r]`` holds spool row ``r``
        where ``dest = default_rng(seed).permutation(n)``.

    """
    n = spool.num_entries
    dest = np.random.default_rng(seed).permutation(n)
    size = bucket_size(n)
    buckets = _scatter(spool, dest, size)
    del dest
    for name in ("payload.bin", "ends.bin", "labels.bin"):
        (spool.directory / name).unlink()
    for b, (meta_file, bin_file) in enumerate(buckets):
        meta = np.fromfile(meta_file, dtype="<i8").reshape(-1, 4)
        data = bin_file.read_bytes()
        meta_file.unlink()
        bin_file.unlink()
        lo = b * size
        ends = np.cumsum(meta[:, 2])
        starts = ends - meta[:, 2]
        order = np.empty(len(meta), dtype=np.int64)
        order[meta[:, 0] - lo] = np.arange(len(meta))
        assert len(meta) == min(size, n - lo), "a bucket must fill its position range exactly"
        for first in range(0, len(meta), YIELD_BLOCK):
            idx = order[first : first + YIELD_BLOCK]
            pairs = zip(starts[idx].tolist(), ends[idx].tolist(), strict=True)
            yield Block(
                lo=lo + first,
                hi=lo + first + len(idx),
                rows=meta[idx, 1],
                lengths=meta[idx, 2],
                payloads=[data[s:e] for s, e in pairs],
                labels=meta[idx, 3],
            )
