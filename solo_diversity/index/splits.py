# SPDX-License-Identifier: MIT
"""Checks of a training / validation pair of indexes: shared images and labels out of range.

Validation on training images reports training accuracy as test accuracy, and a path or an index
fingerprint does not catch it: a subset of the training index, or the training split rebuilt with
another seed, is another file with another fingerprint over the same images. So the images are
compared by content: :func:`entry_hashes` hashes the encoded bytes of each entry (the file of a
``paths`` entry), and :func:`shared_entries` counts the validation entries whose hash the training
index holds, over every entry of an index of up to :data:`FULL_LIMIT` entries and a seeded sample
of :data:`SAMPLE` entries of a larger one. :func:`check_validation_split` turns that into an
error when validation is all (or, sampled, mostly) training images, and a warning with the count
when some are; it also checks the validation labels against the training classes, as
:func:`check_labels` does for one index, before a label out of range stops the first batch.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

from solo_diversity.errors import UserError
from solo_diversity.index.reader import ImageIndex

log = logging.getLogger(__name__)

FULL_LIMIT = 50_000  # an index up to this size is hashed entry by entry, whole
SAMPLE = 5_000  # entries hashed from a larger index (a seeded sample)
READ_BLOCK = 1024  # entries read per HDF5 call
UNREAD = np.uint64(0)  # the hash of an entry whose file cannot be read: matches nothing


def entry_hashes(index: ImageIndex, positions: np.ndarray) -> np.ndarray:
    """(M,) uint64: a 64-bit BLAKE2b of each entry's encoded image (0 for an unreadable file).

    Args:
        index: the index.
        positions: (M,) entry positions.

    """
    hashes = np.empty(len(positions), dtype=np.uint64)
    for lo in range(0, len(positions), READ_BLOCK):
        block = index.read_many(positions[lo : lo + READ_BLOCK].tolist())
        for k, data in enumerate(block, start=lo):
            if isinstance(data, OSError):
                hashes[k] = UNREAD
            else:
                digest = hashlib.blake2b(data, digest_size=8).digest()
                hashes[k] = int.from_bytes(digest, "little") or 1  # 0 is kept for UNREAD
    return hashes


def checked_positions(size: int, seed: int, full_limit: int, sample: int) -> np.ndarray:
    """Every position of an index of ``size`` up to ``full_limit``, else ``sample`` seeded ones."""
    if size <= full_limit:
        return np.arange(size, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(size, sample, replace=False))


@dataclass(frozen=True)
class SharedEntries:
    """How many validation entries of those hashed are among the hashed training entries."""

    shared: int
    val_checked: int
    val_size: int
    train_checked: int
    train_size: int

    @property
    def exact(self) -> bool:
        """Whether every entry of both indexes was hashed (else the counts are of samples)."""
        return self.val_checked == self.val_size and self.train_checked == self.train_size

    @property
    def share(self) -> float:
        """The estimated share of validation images that are training images, in [0, 1]."""
        if not self.val_checked or not self.train_checked:
            return 0.0
        found = self.shared / self.val_checked
        return min(1.0, found * self.train_size / self.train_checked)


def shared_entries(
    train: ImageIndex,
    val: ImageIndex,
    *,
    full_limit: int = FULL_LIMIT,
    sample: int = SAMPLE,
    seed: int = 0,
) -> SharedEntries:
    """Count the validation entries whose content the training index holds.

    Args:
        train: the training index.
        val: the validation index.
        full_limit: an index up to this size is hashed whole.
        sample: entries hashed from a larger index (seeded by ``seed``).
        seed: seeds the samples.

    """
    train_hashes = entry_hashes(train, checked_positions(len(train), seed, full_limit, sample))
    val_hashes = entry_hashes(val, checked_positions(len(val), seed + 1, full_limit, sample))
    found = np.isin(val_hashes, train_hashes[train_hashes != UNREAD])
    return SharedEntries(
        shared=int(found.sum()),
        val_checked=len(val_hashes),
        val_size=len(val),
        train_checked=len(train_hashes),
        train_size=len(train),
    )


def check_labels(index: ImageIndex, labels: np.ndarray, num_classes: int, classes: str) -> None:
    """Every label is a class id below ``num_classes`` (or -1, unlabeled).

    Args:
        index: the index the labels come from (named in the message).
        labels: (M,) its labels.
        num_classes: the classes a classifier trained with these labels has.
        classes: where ``num_classes`` comes from, for the message.

    Raises:
        UserError: a label at or above ``num_classes``, which would stop training at its batch.

    """
    top = int(labels.max()) if len(labels) else -1
    if top >= num_classes:
        raise UserError(
            f"index {index.path} has label {top}, but num_classes={num_classes} ({classes}); "
            "labels must be class ids below it: rebuild the index, or give a split of the same "
            "classes"
        )


def _leak_line(val: ImageIndex, train: ImageIndex, found: SharedEntries) -> str:
    if found.exact:
        count = "all" if found.shared == found.val_size else f"{found.shared} of the"
        return (
            f"{count} {found.val_size} images of validation index {val.path} are training "
            f"images of {train.path} (same bytes)"
        )
    return (
        f"about {found.share:.0%} of the images of validation index {val.path} are training "
        f"images of {train.path} ({found.shared} of {found.val_checked} sampled images have the "
        f"bytes of one of {found.train_checked} sampled training images)"
    )


def check_validation_split(train: ImageIndex, val: ImageIndex) -> None:
    """The validation index is held out: no training images, and the labels of both indexes are
    ids of the training classes.

    Validation all of training images (sampled: at least half) is a :class:`UserError`; some
    shared images are a warning with the count, as accuracy on them is inflated.

    Args:
        train: the training index.
        val: the validation (test) index.

    Raises:
        UserError: one line naming both indexes and what to do.

    """
    check_labels(train, train.labels(), train.num_classes, "its class names")
    if val.has_labels:
        check_labels(val, val.labels(), train.num_classes, f"the classes of {train.path}")
    found = shared_entries(train, val)
    if not found.shared:
        return
    line = _leak_line(val, train, found)
    if found.share >= (1.0 if found.exact else 0.5):
        raise UserError(f"{line}; give the held-out split")
    log.warning("%s; validation accuracy counts them too", line)
