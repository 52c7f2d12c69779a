# SPDX-License-Identifier: MIT
"""The on-disk schema of a solo-diversity index: names, attributes, the fingerprint, validation.

One HDF5 file holds one (dataset, split), its entries stored already shuffled. Datasets: ``paths``
(vlen utf-8, relative to attr ``root``) for ``kind="paths"`` or ``images`` (vlen uint8, encoded
PNG/JPEG bytes, no compression on top) for ``kind="bytes"``; ``labels`` int64 (-1 = unlabeled);
``class_names`` (vlen utf-8); ``source_position`` int64 (row in the unshuffled source); optionally
``origin`` int64 (which input of a union, listed in attr ``origin_sources``). Everything
else about the file (format tag, version, seed, fingerprint ...) lives in root attributes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from solo_diversity.errors import UserError

FORMAT_NAME = "solo-diversity-index"
FORMAT_VERSION = 1
KINDS = ("paths", "bytes")
PAYLOAD_DATASET = {"paths": "paths", "bytes": "images"}
REQUIRED_ATTRS = (
    "format",
    "format_version",
    "dataset",
    "split",
    "kind",
    "root",
    "seed",
    "source",
    "fingerprint",
    "num_samples",
    "created",
)
SPLIT_ALIASES = {"train": "train", "val": "test", "test": "test"}


def check_seed(seed: Any) -> int:
    """Return ``seed`` as a non-negative int or raise :class:`UserError`."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"index seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def builtin_split(split: str) -> str:
    """Map a split name of a built-in dataset to ``"train"`` or ``"test"`` (``"val"`` = test).

    Args:
        split: the split a config asks for.

    Returns:
        ``"train"`` or ``"test"``.

    """
    try:
        return SPLIT_ALIASES[split]
    except KeyError:
        raise UserError(
            f"unknown split {split!r}; built-in datasets have: train, test (val = test)"
        ) from None


def round_half_up(x: float) -> int:
    """Round a non-negative float to the nearest int, halves up (monotone, platform independent)."""
    return int(math.floor(x + 0.5))


class Fingerprint:
    """Streaming sha256 over the ordered entries and labels, independent of the block size used.

    The digest is
    ``sha256(kind | class_names | sha256(lengths) | sha256(payloads) | sha256(labels))`` where
    lengths and labels are int64 little-endian in index order and payloads are the utf-8 path
    strings or encoded image bytes concatenated in index order. Feeding the same entries in any
    blocking gives the same hex digest.
    """

    def __init__(self, kind: str, class_names: Sequence[str]) -> None:
        self._head = hashlib.sha256(f"{FORMAT_NAME}/{FORMAT_VERSION}/{kind}\n".encode())
        for name in class_names:
            self._head.update(name.encode("utf-8") + b"\n")
        self._lengths = hashlib.sha256()
        self._payloads = hashlib.sha256()
        self._labels = hashlib.sha256()

    def update(self, lengths: np.ndarray, payload: bytes | memoryview, labels: np.ndarray) -> None:
        """Add a block: ``lengths`` (B,), ``payload`` the B entries joined, ``labels`` (B,)."""
        self._lengths.update(np.ascontiguousarray(lengths, dtype="<i8").tobytes())
        self._payloads.update(payload)
        self._labels.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())

    def hexdigest(self) -> str:
        """Return the hex digest of everything fed so far."""
        final = self._head.copy()
        for part in (self._lengths, self._payloads, self._labels):
            final.update(part.digest())
        return final.hexdigest()


def validate_attrs(attrs: dict[str, Any], path: str) -> None:
    """Check that the root attributes describe an index this code can read.

    Args:
        attrs: the HDF5 root attributes as a plain dict.
        path: the file, for the message.

    Raises:
        UserError: foreign file, another format version, or missing attributes.

    """
    if attrs.get("format") != FORMAT_NAME:
        raise UserError(
            f"{path} is not a solo-diversity index (format attr {attrs.get('format')!r}, "
            f"expected {FORMAT_NAME!r}); build one with `solo-div index build`"
        )
    version = attrs.get("format_version")
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)):
        raise UserError(
            f"{path} is a corrupt index: format_version {version!r} is not an integer; "
            "rebuild it with `solo-div index build`"
        )
    if version > FORMAT_VERSION:
        raise UserError(
            f"{path} has index format_version {version}; this solo-diversity reads "
            f"{FORMAT_VERSION}: upgrade solo-diversity, or rebuild it with `solo-div index build`"
        )
    if version != FORMAT_VERSION:
        raise UserError(
            f"{path} has index format_version {version}; this solo-diversity reads "
            f"{FORMAT_VERSION}: rebuild it with `solo-div index build`"
        )
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise UserError(f"{path} is a corrupt index: missing attrs {', '.join(missing)}")
    if attrs["kind"] not in KINDS:
        raise UserError(f"{path} is a corrupt index: kind {attrs['kind']!r} not in {KINDS}")
