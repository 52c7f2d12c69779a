# SPDX-License-Identifier: MIT
"""Checkpoint files that are either complete or absent, and the check that tells them apart.

This module owns the file side of checkpointing: :func:`publish` writes the sha256 of a freshly
written temporary file beside its final name (``<ckpt>.sha256``, in ``sha256sum`` format, itself
written atomically) and moves the file to that name (fsync, rename in the same folder, fsync of the
folder), so a crash or a full disk never leaves a truncated file under a checkpoint's name.
:func:`verify` says why a checkpoint cannot be resumed from (checksum mismatch, or unloadable when
it has no checksum), or returns None for a good one; :func:`checksum_mismatch` is its checksum half,
which the probe and kNN apply before they read a checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

#: Suffix of a checkpoint being written; ``*.ckpt`` globs never match it.
TMP_SUFFIX = ".tmp"
#: Suffix of the checksum file beside a checkpoint.
SHA_SUFFIX = ".sha256"
_CHUNK = 1 << 20


def temporary_path(path: Path) -> Path:
    """Where ``path`` is written before :func:`publish`: ``<name>.tmp`` in the same folder."""
    return path.with_name(path.name + TMP_SUFFIX)


def checksum_path(path: Path) -> Path:
    """The checksum file of a checkpoint: ``<name>.sha256`` beside it."""
    return path.with_name(path.name + SHA_SUFFIX)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_durably(tmp: Path, path: Path) -> None:
    _fsync_file(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def publish(tmp: Path, path: Path) -> str:
    """Make the complete file ``tmp`` the checkpoint ``path``, with its checksum file beside it.

    The checksum is computed and written (to its own temporary file) before anything is renamed,
    so a full disk fails here with nothing published and no temporary file left behind.

    Args:
        tmp: the fully written temporary file (same folder as ``path``).
        path: the final name; an existing file there is replaced only once ``tmp`` is durable.

    Returns:
        The file's hex sha256 (also in :func:`checksum_path`).

    Raises:
        OSError: when a file cannot be written; ``tmp`` and the checksum's temporary are removed.

    """
    sidecar = checksum_path(path)
    sidecar_tmp = temporary_path(sidecar)
    try:
        digest = file_sha256(tmp)
        sidecar_tmp.write_text(f"{digest}  {path.name}\n")
        _fsync_file(sidecar_tmp)
        sidecar.unlink(missing_ok=True)  # an older file of this name: its checksum is stale
        _replace_durably(tmp, path)
    except OSError:
        for leftover in (tmp, sidecar_tmp):
            if leftover.is_file():
                leftover.unlink()
        raise
    # The checkpoint is published; a crash before the next rename leaves it without a checksum
    # file, which verify() accepts when the file loads.
    _replace_durably(sidecar_tmp, sidecar)
    return digest


def remove(path: Path) -> None:
    """Delete a checkpoint and its checksum file (either may be missing)."""
    path.unlink(missing_ok=True)
    checksum_path(path).unlink(missing_ok=True)


def checksum_mismatch(path: Path) -> str | None:
    """Why ``path`` differs from its checksum file, or None when it matches or has none.

    The probe and kNN check only this: a file of another tool has no checksum file and is read as
    it is, while one of ours that changed since it was written (truncated, edited) is refused.
    """
    sidecar = checksum_path(path)
    if not sidecar.is_file():
        return None
    fields = sidecar.read_text().split()
    if not fields:
        return f"its checksum file {sidecar.name} is empty"
    actual = file_sha256(path)
    if actual != fields[0]:
        return (
            f"its sha256 {actual[:12]} differs from {sidecar.name} ({fields[0][:12]}): the "
            "file is truncated or corrupt"
        )
    return None


def verify(path: Path) -> str | None:
    """Why ``path`` cannot be resumed from, or None when it can.

    With a checksum file the bytes must match it. Without one (written by another tool, or the
    process died between the rename and the checksum) the file must load as a checkpoint with a
    ``state_dict``.
    """
    if checksum_path(path).is_file():
        return checksum_mismatch(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as err:  # noqa: BLE001 - any failure to load is the reason to skip it
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"it does not load ({type(err).__name__}{': ' + first if first else ''})"
    if not isinstance(state, dict) or "state_dict" not in state:
        return "it is not a Lightning checkpoint (no state_dict)"
    return None
