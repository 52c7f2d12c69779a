# SPDX-License-Identifier: MIT
"""The set algebra over indexes: union, subset, filter and exclude, each writing a new index.

Subset, filter and exclude pick positions of one index and hand them to
:func:`~solo_diversity.index.algebra.write_selection`, so each result records the index it was
cut from. A union streams the entries of several indexes into one, re-shuffled with its own seed,
and records for every entry which input it came from (``origin``), so that a run on ``B ∪ A`` can
still tell B's images from A's. The budget plan needs nothing more: it reads a union's N as
``len(index)`` like any other index.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from solo_diversity.errors import UserError
from solo_diversity.index.algebra import first_count, write_selection
from solo_diversity.index.reader import ImageIndex, open_index
from solo_diversity.index.writer import IndexMeta, write_index


def _joined(values: Sequence[str]) -> str:
    return "+".join(dict.fromkeys(values))


def union_class_names(indexes: Sequence[ImageIndex]) -> tuple[list[str], list[np.ndarray]]:
    """The union of the inputs' class names and each input's label map into it.

    Names keep their first appearance: the first input's ids are unchanged, and a name new in a
    later input is appended. Labels are remapped by name, so ``dog`` is one class wherever it was.

    Returns:
        ``(names, maps)``: the union's names, and per input a (K_i,) array from its ids to the
        union's ids.
    """
    names: dict[str, int] = {}
    maps = []
    for index in indexes:
        maps.append(
            np.array([names.setdefault(n, len(names)) for n in index.class_names], dtype=np.int64)
        )
    return list(names), maps


def _union_entries(
    indexes: Sequence[ImageIndex], maps: Sequence[np.ndarray], absolute: bool
) -> Iterator[tuple[str | bytes, int]]:
    for index, label_map in zip(indexes, maps, strict=True):
        labels = index.labels()
        new_labels = np.full_like(labels, -1)  # unlabeled entries stay -1
        known = labels >= 0
        new_labels[known] = label_map[labels[known]]
        for pos in range(len(index)):
            if index.kind == "bytes":
                payload: str | bytes = index.read_bytes(pos)
            else:
                payload = str(index.file_path(pos)) if absolute else index.entry_name(pos)
            yield payload, int(new_labels[pos])


def union_indexes(
    paths: Sequence[str | Path], out: str | Path, *, seed: int, dataset: str | None = None
) -> Path:
    """Write the union of several indexes, re-shuffled with ``seed``, with each entry's origin.

    Class names are the union of the inputs' lists (first appearance order) and labels are remapped
    by name. Paths indexes under one root keep relative paths; under different roots the union
    stores absolute paths (no root). ``source_position`` holds each entry's position in its input
    and ``origin`` the input's number in ``paths``.

    Args:
        paths: two or more index files of one kind (all ``paths`` or all ``bytes``).
        out: the index to write (atomically).
        seed: the union's shuffle seed.
        dataset: the dataset name to record (default: the inputs' names joined by ``+``); a run
            checks it against the config's ``data.dataset``, e.g. ``imagenet100`` for B ∪ A.

    Returns:
        ``out`` as a Path.

    Raises:
        UserError: fewer than two inputs, a missing or unreadable input, or mixed kinds.
    """
    if len(paths) < 2:
        raise UserError(f"index union needs at least two inputs, got {len(paths)}")
    indexes = [open_index(p) for p in paths]
    kinds = {index.kind for index in indexes}
    if len(kinds) > 1:
        listing = ", ".join(f"{index.path} is {index.kind}" for index in indexes)
        raise UserError(f"index union needs inputs of one kind (paths or bytes): {listing}")
    names, maps = union_class_names(indexes)
    roots = {str(index.root) for index in indexes}
    absolute = indexes[0].kind == "paths" and len(roots) > 1
    inputs = [{"path": str(index.path), "fingerprint": index.fingerprint} for index in indexes]
    meta = IndexMeta(
        dataset=dataset or _joined([index.dataset for index in indexes]),
        split=_joined([index.split for index in indexes]),
        kind=indexes[0].kind,
        root="" if absolute or indexes[0].root is None else str(indexes[0].root),
        seed=seed,
        source=json.dumps({"union": inputs, "seed": seed}),
        class_names=tuple(names),
        origin_sources=json.dumps(inputs),
    )
    rows = np.concatenate([np.arange(len(index), dtype=np.int64) for index in indexes])
    origins = np.concatenate(
        [np.full(len(index), i, dtype=np.int64) for i, index in enumerate(indexes)]
    )
    entries = _union_entries(indexes, maps, absolute)
    return write_index(entries, out, meta, source_rows=rows, origins=origins)


def subset_index(
    path: str | Path,
    out: str | Path,
    *,
    fraction: float | None = None,
    count: int | None = None,
    seed: int | None = None,
) -> Path:
    """Write the first K entries of an index's shuffled order (the project's subset rule).

    Subsets of one index nest: the entries of a smaller fraction are among those of a larger one.

    Args:
        path: the input index.
        out: the index to write.
        fraction: K = round(fraction * N), at least 1; or
        count: K itself.
        seed: the new index's shuffle seed (default: the input's).
    """
    index = open_index(path)
    k = first_count(index, fraction=fraction, count=count)
    seed = index.seed if seed is None else seed
    return write_selection(index, np.arange(k), out, seed=seed, note=f"first {k}")


def read_class_list(text: str | None, file: str | Path | None) -> list[str]:
    """Class names from ``--classes a,b`` or ``--classes-file`` (one a line, ``#`` comments)."""
    if (text is None) == (file is None):
        raise UserError("give exactly one of --classes or --classes-file")
    if file is not None:
        listing = Path(file)
        if not listing.is_file():
            raise UserError(f"class list not found: {listing}")
        items = [line.split("#", 1)[0].strip() for line in listing.read_text().splitlines()]
    else:
        assert text is not None
        items = [item.strip() for item in text.split(",")]
    names = [item for item in items if item]
    if not names:
        raise UserError("the class list is empty")
    return names


def class_ids(index: ImageIndex, names: Sequence[str]) -> np.ndarray:
    """Ids of ``names`` in ``index``; UserError naming the unknown ones (and some valid ones)."""
    lookup = {name: i for i, name in enumerate(index.class_names)}
    unknown = [name for name in names if name not in lookup]
    if unknown:
        valid = ", ".join(index.class_names[:8]) + (", ..." if index.num_classes > 8 else "")
        raise UserError(
            f"class(es) {', '.join(unknown[:5])} not in {index.path} "
            f"({index.num_classes} classes: {valid or 'none, it is unlabeled'})"
        )
    return np.array([lookup[name] for name in names], dtype=np.int64)


def filter_index(
    path: str | Path, out: str | Path, classes: Sequence[str], *, seed: int | None = None
) -> Path:
    """Write the entries of ``classes`` (names) of an index; class ids and names are kept."""
    index = open_index(path)
    keep = np.flatnonzero(np.isin(index.labels(), class_ids(index, classes)))
    seed = index.seed if seed is None else seed
    return write_selection(index, keep, out, seed=seed, note=f"classes {','.join(classes)}")


def _content_keys(index: ImageIndex) -> Iterator[str]:
    for pos in range(len(index)):
        yield hashlib.sha256(index.read_bytes(pos)).hexdigest()


def _path_keys(index: ImageIndex) -> list[str]:
    base = index.root if index.root is not None else Path()
    return [str(base / name) for name in index.entry_names()]


def exclude_index(
    path: str | Path, out: str | Path, other: str | Path, *, seed: int | None = None
) -> Path:
    """Write the entries of an index that are not in ``other`` (e.g. keep test images out).

    A bytes index is compared by the sha256 of each image's encoded content (``other`` may be of
    either kind: its files are read); a paths index by each entry's full path (root / path), and
    then ``other`` must be a paths index too.

    Raises:
        UserError: a missing input, a paths index against a bytes ``other``, or nothing left.
    """
    index, ref = open_index(path), open_index(other)
    if index.kind == "bytes":
        dropped = set(_content_keys(ref))
        keys: list[str] = list(_content_keys(index))
    elif ref.kind != "paths":
        raise UserError(
            f"{index.path} is a paths index and {ref.path} embeds its images; compare like with "
            "like (rebuild one of them with or without --embed)"
        )
    else:
        dropped = set(_path_keys(ref))
        keys = _path_keys(index)
    keep = np.array([i for i, key in enumerate(keys) if key not in dropped], dtype=np.int64)
    if len(keep) == 0:
        raise UserError(f"every entry of {index.path} is in {ref.path}; nothing to write")
    seed = index.seed if seed is None else seed
    return write_selection(index, keep, out, seed=seed, note=f"not in {ref.path}")
