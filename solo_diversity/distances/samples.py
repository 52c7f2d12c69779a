# SPDX-License-Identifier: MIT
"""Which images of a dataset a distance uses: an index, an optional subset, a capped sample.

A dataset is named on the command line as ``PATH`` or ``PATH:FRACTION`` (an index, optionally its
first ``FRACTION`` via :func:`~solo_diversity.index.select_subset`). The paper compares at most
50,000 images per dataset (Hammoud et al., arXiv:2403.13808, Table 3). Without a seed the cap keeps
the first ``max_samples`` positions: the index is stored already shuffled by its own seed, so this
prefix is a uniform sample that is nested across caps. With a seed, ``max_samples`` positions are
drawn without replacement by ``numpy.random.default_rng(seed)``. The same arguments always give
the same positions, and :attr:`DatasetSample.key` names them in cache files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from solo_diversity.errors import UserError
from solo_diversity.index import ImageIndex, open_index, select_subset

#: The paper's cap on images per dataset for FID and VisualDNA.
DEFAULT_MAX_SAMPLES = 50_000


@dataclass(frozen=True)
class DatasetSample:
    """The images of one dataset that enter a distance.

    Attributes:
        index: the index the positions refer to.
        positions: (M,) int64 index positions, in the order they are embedded.
        fraction: the subset fraction taken before capping (1.0 = whole index).
        max_samples: the cap that was applied.
        seed: the sampling seed, or ``None`` for the index-order prefix.
    """

    index: ImageIndex
    positions: np.ndarray = field(repr=False)
    fraction: float
    max_samples: int
    seed: int | None

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def name(self) -> str:
        """A short label: the dataset name, plus the fraction when it is a subset."""
        if self.fraction < 1.0:
            return f"{self.index.dataset}:{self.fraction:g}"
        return self.index.dataset

    @property
    def key(self) -> str:
        """16 hex chars identifying (index fingerprint, exact positions): the cache key."""
        digest = hashlib.sha256(self.index.fingerprint.encode())
        digest.update(np.ascontiguousarray(self.positions, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]

    def cache_dir(self, root: Path | None = None) -> Path:
        """Where features and VDNAs of this dataset are kept.

        Args:
            root: a cache root; ``None`` puts them beside the index in ``<stem>.distances/``.

        Returns:
            ``<index dir>/<stem>.distances`` or ``<root>/<stem>-<fingerprint[:12]>``.
        """
        stem = self.index.path.stem
        if root is None:
            return self.index.path.parent / f"{stem}.distances"
        return Path(root) / f"{stem}-{self.index.fingerprint[:12]}"


def parse_dataset_spec(spec: str) -> tuple[Path, float]:
    """Split ``PATH`` or ``PATH:FRACTION`` into the index path and the fraction.

    Args:
        spec: e.g. ``"imagenet.h5"`` or ``"yfcc.h5:0.01"``.

    Returns:
        ``(path, fraction)``; fraction 1.0 when absent.

    Raises:
        UserError: a fraction that is not a number in (0, 1].
    """
    path, sep, tail = spec.rpartition(":")
    if not sep or "/" in tail:
        return Path(spec), 1.0
    try:
        fraction = float(tail)
    except ValueError:
        raise UserError(
            f"dataset {spec!r}: {tail!r} after ':' is not a fraction; use PATH or PATH:FRACTION "
            "with FRACTION in (0, 1]"
        ) from None
    if not 0.0 < fraction <= 1.0:
        raise UserError(f"dataset {spec!r}: fraction {tail} must be in (0, 1]")
    return Path(path), fraction


def sample_positions(n: int, max_samples: int, seed: int | None) -> np.ndarray:
    """At most ``max_samples`` of ``range(n)``: the prefix, or a seeded draw.

    Args:
        n: number of candidate positions.
        max_samples: the cap (> 0).
        seed: ``None`` for the first ``max_samples``; an int for a seeded draw without
            replacement, returned in ascending order.

    Returns:
        (min(n, max_samples),) int64 offsets into ``range(n)``.

    Raises:
        UserError: ``max_samples`` < 1.
    """
    if max_samples < 1:
        raise UserError(f"--max-samples must be a positive number of images, got {max_samples}")
    k = min(n, max_samples)
    if seed is None or k == n:
        return np.arange(k, dtype=np.int64)
    chosen = np.random.default_rng(seed).choice(n, size=k, replace=False)
    return np.sort(chosen).astype(np.int64)


def sample_dataset(
    spec: str | Path | ImageIndex,
    *,
    fraction: float | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    seed: int | None = None,
) -> DatasetSample:
    """Open a dataset spec and choose the images a distance will use.

    Args:
        spec: ``PATH``, ``PATH:FRACTION`` or an open index.
        fraction: overrides the fraction in ``spec`` (plain, non-stratified prefix).
        max_samples: cap on images (default 50,000 as in the paper).
        seed: ``None`` keeps the index-order prefix; an int draws a seeded sample.

    Returns:
        The :class:`DatasetSample`.
    """
    if isinstance(spec, ImageIndex):
        index, spec_fraction = spec, 1.0
    else:
        path, spec_fraction = parse_dataset_spec(str(spec))
        index = open_index(path)
    value = spec_fraction if fraction is None else fraction
    candidates = np.asarray(select_subset(index, value).positions, dtype=np.int64)
    offsets = sample_positions(len(candidates), max_samples, seed)
    return DatasetSample(index, candidates[offsets], float(value), max_samples, seed)
