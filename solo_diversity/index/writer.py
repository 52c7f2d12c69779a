# SPDX-License-Identifier: MIT
"""Atomic writer of a shuffled index file (HDF5 layout, attributes, fingerprint).

The entries are spooled and put in the seeded order by :mod:`solo_diversity.index.shuffle`
(bounded memory, sequential I/O); this module appends the ordered blocks to the HDF5 datasets and
feeds the fingerprint. Everything a build writes lives in one working folder beside the output,
``.<out name>.build-<pid>`` (spool, buckets, the half-written index), which the build holds a lock
on. The index is renamed onto ``<out>`` only when complete, so an interrupted build leaves an
earlier index untouched and never a half file at the target; the folder is removed when the build
ends in any way that runs Python, and the next build of the same output removes those of builds
that were killed (lock free). :func:`relocate_root` points a paths index at a moved image folder.
A set built from several indexes (a union) also stores an ``origin`` per entry, the input it came
from, with the inputs listed in the ``origin_sources`` attribute; indexes without them stay valid.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from solo_diversity.console import counted, length, progress
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
BUILD_DIR_INFIX = ".build-"  # a build's working folder: .<out name>.build-<pid>
LOCK_NAME = "owner.lock"  # flock-ed by the live build: a free lock means its owner is gone
PARTIAL_NAME = "index.h5.partial"  # the index being written, renamed onto <out> when complete
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_TEXTS = ("No space left on device", "Disk quota exceeded")  # h5py gives them as text


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
    origin_sources: str = ""  # JSON list of the inputs an ``origin`` entry points into; "" = none


def _create_datasets(
    f: h5py.File, meta: IndexMeta, n: int
) -> tuple[h5py.Dataset, h5py.Dataset, h5py.Dataset, h5py.Dataset | None]:
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
    origin = f.create_dataset("origin", **numeric) if meta.origin_sources else None
    f.create_dataset(
        "class_names",
        data=np.array(meta.class_names, dtype=object),
        dtype=h5py.string_dtype("utf-8"),
    )
    return payload, labels, positions, origin


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


def _write_shuffled(
    spool: Spool,
    meta: IndexMeta,
    target: Path,
    rows: np.ndarray | None,
    origins: np.ndarray | None,
) -> str:
    """Pass 2: write entries in ``order`` block by block; return the fingerprint."""
    n = spool.num_entries
    fingerprint = Fingerprint(meta.kind, meta.class_names)
    with h5py.File(target, "w") as f:
        payload_ds, labels_ds, positions_ds, origin_ds = _create_datasets(f, meta, n)
        for block in shuffled_blocks(spool, meta.seed):
            fingerprint.update(block.lengths, b"".join(block.payloads), block.labels)
            if meta.kind == "paths":
                payload_ds[block.lo : block.hi] = np.array(block.payloads, dtype=object)
            else:
                _write_bytes(payload_ds, block.lo, block.payloads)
            labels_ds[block.lo : block.hi] = block.labels
            positions_ds[block.lo : block.hi] = block.rows if rows is None else rows[block.rows]
            if origin_ds is not None and origins is not None:
                origin_ds[block.lo : block.hi] = origins[block.rows]
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
        if meta.origin_sources:
            f.attrs["origin_sources"] = meta.origin_sources
    return digest


def build_dir(out: Path, pid: int | None = None) -> Path:
    """The working folder of one build of ``out``: ``<out dir>/.<out name>.build-<pid>``."""
    return out.parent / f".{out.name}{BUILD_DIR_INFIX}{os.getpid() if pid is None else pid}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _owner_gone(folder: Path) -> bool:
    """Whether the build that owns ``folder`` has ended (its lock is free, or its pid is gone)."""
    try:
        with open(folder / LOCK_NAME, "rb") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a live build holds it
            return True
    except FileNotFoundError:  # killed before it took the lock, or not ours: ask by pid
        pid = folder.name.rpartition(BUILD_DIR_INFIX)[2]
        return pid.isdigit() and not _pid_alive(int(pid))


def remove_stale_builds(out: Path) -> list[Path]:
    """Delete what killed builds of ``out`` left (spool files, half-written index); keep live ones.

    Args:
        out: the index file a build is about to write.

    Returns:
        The folders removed.

    """
    removed = []
    for folder in sorted(out.parent.glob(f".{glob.escape(out.name)}{BUILD_DIR_INFIX}*")):
        if folder.is_dir() and _owner_gone(folder):
            size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            shutil.rmtree(folder, ignore_errors=True)
            log.warning("removed %s (%d bytes) left by an interrupted build", folder, size)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def _build_folder(out: Path) -> Iterator[Path]:
    """A fresh, locked working folder beside ``out``, removed on every way out but SIGKILL."""
    folder = build_dir(out)
    shutil.rmtree(folder, ignore_errors=True)  # a dead build of an earlier process with our pid
    folder.mkdir()
    try:
        with open(folder / LOCK_NAME, "wb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # held until the build ends, however it ends
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _publish(partial: Path, out: Path) -> None:
    """Make the complete file durable, then rename it onto ``out`` in one step."""
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, out)


def _disk_full(err: OSError) -> str | None:
    """What ``err`` says when the disk, or the user's quota on it, is full; None otherwise."""
    for code, text in zip(DISK_FULL_ERRNOS, DISK_FULL_TEXTS, strict=True):
        if err.errno == code or text in str(err):
            return text
    return None


def _check_target(out: Path) -> None:
    """``out`` can become a file: it is not a folder, and its folder exists or can be made."""
    if out.is_dir():
        raise UserError(
            f"{out} is a folder; give the index file to write there, e.g. {out / 'index.h5'}"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"cannot create the folder {out.parent} of index {out} ({err.strerror or err}); "
            "move what is in the way, or give an index path in a writable folder"
        ) from None


def write_index(
    entries: Iterable[tuple[str | bytes, int]],
    out_path: str | Path,
    meta: IndexMeta,
    *,
    source_rows: np.ndarray | None = None,
    origins: np.ndarray | None = None,
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
        origins: (N,) which of ``meta.origin_sources`` each streamed entry came from, stored as
            ``origin``; required exactly when ``meta.origin_sources`` is set.

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.

    Raises:
        UserError: when the source yields no entries, ``out_path`` is a folder, or the disk fills
            up. Any exception leaves ``out_path`` as it was, and no working files behind.

    """
    out = Path(out_path)
    if (origins is None) != (not meta.origin_sources):
        raise ValueError("origins and meta.origin_sources must be given together")
    _check_target(out)
    remove_stale_builds(out)
    try:
        digest, count = _write_in_build_folder(entries, out, meta, source_rows, origins)
    except OSError as err:
        full = _disk_full(err)
        if full is None:
            raise
        raise UserError(
            f"the disk of {out.parent} is full ({full}): index {out} was not written, and the "
            "working files are removed; free space and build again"
        ) from None
    log.info("wrote index %s (%d entries, fingerprint %s)", out, count, digest[:12])
    return out


def _write_in_build_folder(
    entries: Iterable[tuple[str | bytes, int]],
    out: Path,
    meta: IndexMeta,
    source_rows: np.ndarray | None,
    origins: np.ndarray | None,
) -> tuple[str, int]:
    """Spool, shuffle and write in a working folder, then publish; (fingerprint, entries)."""
    with _build_folder(out) as folder:
        with progress(f"index {out.name}", length(entries)) as advance:
            spool = spool_entries(counted(entries, advance), meta.kind, folder)
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
        if origins is not None and len(origins) != spool.num_entries:
            raise ValueError(f"{len(origins)} origins for {spool.num_entries} entries")
        partial = folder / PARTIAL_NAME
        digest = _write_shuffled(spool, meta, partial, source_rows, origins)
        _publish(partial, out)
    return digest, spool.num_entries


def relocate_root(path: str | Path, new_root: str | Path) -> Path:
    """Point a ``paths`` index at the new place of its image folder (entries and order unchanged).

    The fingerprint covers the relative paths and labels, not the root, so it stays the same and a
    run resumes across the move.

    Args:
        path: the index file (rewritten in place: only its ``root`` attribute changes).
        new_root: the folder that now holds the same relative paths.

    Returns:
        The new root, resolved.

    Raises:
        UserError: not a paths index, ``new_root`` not a folder, or its first entry missing there.

    """
    from solo_diversity.index.reader import open_index  # the reader validates the file

    index = open_index(path)
    if index.kind != "paths":
        raise UserError(f"index {index.path} embeds its images; it has no root to relocate")
    root = Path(new_root).expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"new root {root} is not a folder")
    if len(index) and not (root / index.entry_name(0)).is_file():
        raise UserError(
            f"{root} does not hold the index's images: {index.entry_name(0)} is not there"
        )
    index.close()
    try:
        with h5py.File(index.path, "a") as f:
            f.attrs["root"] = str(root)
    except OSError as err:
        raise UserError(f"cannot rewrite index {index.path} ({err}); is a run reading it?") from err
    log.info("index %s: root %s -> %s", index.path, index.root, root)
    return root
