# SPDX-License-Identifier: MIT
"""Atomic writer of a shuffled index file (HDF5 layout, attributes, fingerprint).

The entries are spooled and put in the seeded order by :mod:`solo_diversity.index.shuffle`
(bounded memory, sequential I/O, temporary files in a folder beside the output); this module
appends the ordered blocks to the HDF5 datasets and feeds the fingerprint. The file is written as
``<out>.<pid>.partial`` and renamed onto ``<out>`` only when complete, so an interrupted build
leaves an earlier index untouched and never a half file at the target.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from solo_diversity.errors import UserError
from solo_diversity.index.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    PAYLOAD_DATASET,
    Fingerprint,
)
from solo_diversity.index.shuffle import Spool, shuffled_blocks, spool_entries

log = logging.getLogger(__name__)

PAYLOAD_CHUNK = 8192  # HDF5 chunk (entries) of paths/images: 128 KB of vlen references
NUMERIC_CHUNK = 1 << 18  # HDF5 chunk (entries) of labels/source_position


@dataclass(frozen=True)
class IndexMeta:
    """What the writer records besides the entries."""

    dataset: str
    split: str
    kind: str
    root: str
    seed: int
    source: str
    class_names: tuple[str, ...]


def _create_datasets(f: h5py.File, meta: IndexMeta, n: int) -> tuple[h5py.Dataset, ...]:
    payload_type = h5py.string_dtype("utf-8") if meta.kind == "paths" else h5py.vlen_dtype(np.uint8)
    payload = f.create_dataset(
        PAYLOAD_DATASET[meta.kind], shape=(n,), dtype=payload_type, chunks=(min(n, PAYLOAD_CHUNK),)
    )
    numeric = {
        "shape": (n,),
        "dtype": np.int64,
        "chunks": (min(n, NUMERIC_CHUNK),),
        "compression": "gzip",
        "compression_opts": 1,
        "shuffle": True,
    }
    labels = f.create_dataset("labels", **numeric)
    positions = f.create_dataset("source_position", **numeric)
    f.create_dataset(
        "class_names",
        data=np.array(meta.class_names, dtype=object),
        dtype=h5py.string_dtype("utf-8"),
    )
    return payload, labels, positions


def _write_bytes(dataset: h5py.Dataset, start: int, payloads: list[bytes]) -> None:
    """Write encoded images to a vlen uint8 dataset from ``start``.

    h5py turns an object array whose items all have one length (a block of one image, say) into a
    2-d array and refuses it, so such blocks are written item by item.
    """
    arrays = [np.frombuffer(p, dtype=np.uint8) for p in payloads]
    if len({a.size for a in arrays}) == 1:
        for i, array in enumerate(arrays):
            dataset[start + i] = array
        return
    column = np.empty(len(arrays), dtype=object)
    for i, array in enumerate(arrays):
        column[i] = array
    dataset[start : start + len(arrays)] = column


def _write_shuffled(spool: Spool, meta: IndexMeta, target: Path, rows: np.ndarray | None) -> str:
    """Pass 2: write entries in ``order`` block by block; return the fingerprint."""
    n = spool.num_entries
    fingerprint = Fingerprint(meta.kind, meta.class_names)
    with h5py.File(target, "w") as f:
        payload_ds, labels_ds, positions_ds = _create_datasets(f, meta, n)
        for block in shuffled_blocks(spool, meta.seed):
            fingerprint.update(block.lengths, b"".join(block.payloads), block.labels)
            if meta.kind == "paths":
                payload_ds[block.lo : block.hi] = np.array(block.payloads, dtype=object)
            else:
                _write_bytes(payload_ds, block.lo, block.payloads)
            labels_ds[block.lo : block.hi] = block.labels
            positions_ds[block.lo : block.hi] = block.rows if rows is None else rows[block.rows]
        digest = fingerprint.hexdigest()
        f.attrs.update(
            {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "dataset": meta.dataset,
                "split": meta.split,
                "kind": meta.kind,
                "root": meta.root,
                "seed": meta.seed,
                "source": meta.source,
                "fingerprint": digest,
                "num_samples": n,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
        )
    return digest


def write_index(
    entries: Iterable[tuple[str | bytes, int]],
    out_path: str | Path,
    meta: IndexMeta,
    *,
    source_rows: np.ndarray | None = None,
) -> Path:
    """Shuffle ``entries`` with ``meta.seed`` and write them atomically as an index file.

    Args:
        entries: ``(payload, label)`` pairs in the source's deterministic order; payload is a path
            ``str`` relative to ``meta.root`` (kind ``paths``) or encoded image ``bytes`` (kind
            ``bytes``); label is a class id or -1.
        out_path: the index file to create or replace.
        meta: attributes to record.
        source_rows: (N,) original row of each streamed entry, stored as ``source_position``;
            default: the stream position.

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.

    Raises:
        UserError: when the source yields no entries. Any exception leaves ``out_path`` as it was.

    """
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
    try:
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.spool-", dir=out.parent) as tmp:
            spool = spool_entries(entries, meta.kind, Path(tmp))
            if spool.num_entries == 0:
                raise UserError(f"source {meta.source!r} has no entries; nothing to index")
            log.info(
                "index %s: %d entries spooled, shuffling with seed %d",
                out,
                spool.num_entries,
                meta.seed,
            )
            if source_rows is not None and len(source_rows) != spool.num_entries:
                raise ValueError(f"{len(source_rows)} source rows for {spool.num_entries} entries")
            digest = _write_shuffled(spool, meta, partial, source_rows)
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    log.info("wrote index %s (%d entries, fingerprint %s)", out, spool.num_entries, digest[:12])
    return out
