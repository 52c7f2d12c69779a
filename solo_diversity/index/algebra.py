# SPDX-License-Identifier: MIT
"""Writing a selection of an index's entries as a new index, the primitive of the set algebra.

Every derived set (B, A_in_source, a subset, a filter) is some positions of a source index; this
module copies those entries, keeps labels and class names, and records where they came from in the
``source`` attribute, so a derived set is an artifact that can be traced back to its source.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from solo_diversity.errors import UserError
from solo_diversity.index.reader import ImageIndex
from solo_diversity.index.writer import IndexMeta, write_index


def _entries(index: ImageIndex, positions: np.ndarray) -> Iterator[tuple[str | bytes, int]]:
    labels = index.labels(positions)
    for pos, label in zip(positions, labels, strict=True):
        payload = (
            index.entry_name(int(pos)) if index.kind == "paths" else index.read_bytes(int(pos))
        )
        yield payload, int(label)


def write_selection(
    index: ImageIndex,
    positions: np.ndarray,
    out: str | Path,
    *,
    seed: int,
    note: str,
    dataset: str | None = None,
) -> Path:
    """Write entries ``positions`` of ``index`` as a new index shuffled with ``seed``.

    Args:
        index: the source index.
        positions: (M,) entry positions in ``index``'s stored order.
        out: the index file to create (atomically; nothing is left on failure).
        seed: the seed of the new shuffle.
        note: what the selection is, e.g. ``"B"``, recorded with the provenance. A selection of a
            union keeps each entry's origin.
        dataset: the dataset name to record (default: the source's), e.g. ``imagenet100`` for a
            subset of ImageNet that a ``data=imagenet100`` run opens.

    Returns:
        ``out`` as a Path.
    """
    positions = np.asarray(positions, dtype=np.int64)
    if len(positions) == 0:
        raise UserError(f"selection {note!r} of {index.path} is empty; nothing to write")
    source = json.dumps(
        {"from": str(index.path), "fingerprint": index.fingerprint, "set": note, "seed": seed}
    )
    meta = IndexMeta(
        dataset=dataset or index.dataset,
        split=index.split,
        kind=index.kind,
        root=str(index.root) if index.root is not None else "",
        seed=seed,
        source=source,
        class_names=tuple(index.class_names),
        origin_sources=json.dumps(index.origin_sources) if index.has_origin else "",
    )
    origins = index.origins(positions) if index.has_origin else None
    return write_index(
        _entries(index, positions), out, meta, source_rows=positions, origins=origins
    )


def first_count(
    index: ImageIndex, *, fraction: float | None = None, count: int | None = None
) -> int:
    """How many leading entries ``index subset`` keeps (``--fraction`` or ``--count``)."""
    n = len(index)
    if (fraction is None) == (count is None):
        raise UserError("give exactly one of --fraction or --count")
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise UserError(f"--fraction must be in (0, 1], got {fraction}")
        return max(1, round(fraction * n))
    assert count is not None
    if not 0 < count <= n:
        raise UserError(f"--count must be in 1..{n}, got {count}")
    return count
