# SPDX-License-Identifier: MIT
"""Fréchet Inception Distance between two index samples, computed by clean-fid.

FID (Heusel et al., arXiv:1706.08500) fits a Gaussian to each set's features and measures

    FID = ||mu_A - mu_B||^2 + Tr(S_A + S_B - 2 (S_A S_B)^{1/2}),

with mu the feature mean and S the unbiased covariance. Features come from
:mod:`solo_diversity.distances.features` (clean resize, batched over the index, cached), and the
statistics and distance from clean-fid's ``fid_from_feats`` (Parmar et al., arXiv:2104.11222), so
the number equals clean-fid's ``compute_fid(mode="clean")`` on the same images. The paper reports
FID between pretraining and downstream sets in Table 3 (Hammoud et al., arXiv:2403.13808).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from solo_diversity.distances.extractors import Extractor
from solo_diversity.distances.features import LoaderSettings, cached_features
from solo_diversity.distances.samples import DatasetSample
from solo_diversity.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FidResult:
    """One FID value and what it was computed on.

    Attributes:
        fid: the distance.
        a: name of the first dataset; b: of the second.
        n_a: features used from A; n_b: from B.
        extractor: extractor name.
        cached_a: A's features came from the cache; cached_b: B's did.
    """

    fid: float
    a: str
    b: str
    n_a: int
    n_b: int
    extractor: str
    cached_a: bool
    cached_b: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def frechet_from_features(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """FID of two feature matrices with clean-fid's own statistics and Fréchet distance.

    Args:
        feats_a: (N_A, D) features.
        feats_b: (N_B, D) features.

    Returns:
        The Fréchet distance between N(mu_A, S_A) and N(mu_B, S_B).

    Raises:
        UserError: fewer than 2 rows in either set, or different D.
    """
    from cleanfid.fid import fid_from_feats

    for name, feats in (("A", feats_a), ("B", feats_b)):
        if feats.ndim != 2 or len(feats) < 2:
            raise UserError(
                f"FID needs at least 2 readable images in dataset {name}, got {len(feats)}"
            )
    if feats_a.shape[1] != feats_b.shape[1]:
        raise UserError(f"feature sizes differ: {feats_a.shape[1]} vs {feats_b.shape[1]}")
    return float(fid_from_feats(feats_a.astype(np.float64), feats_b.astype(np.float64)))


def fid(
    a: DatasetSample,
    b: DatasetSample,
    extractor: Extractor,
    *,
    settings: LoaderSettings | None = None,
    cache_root: Path | None = None,
) -> FidResult:
    """FID between two dataset samples, embedding each at most once per extractor.

    Args:
        a: first dataset sample.
        b: second dataset sample.
        extractor: a pooled extractor (``inception`` for the paper's numbers).
        settings: batching and device.
        cache_root: feature cache root; ``None`` = beside each index.

    Returns:
        The :class:`FidResult`.
    """
    feats_a = cached_features(a, extractor, settings=settings, cache_root=cache_root)
    feats_b = cached_features(b, extractor, settings=settings, cache_root=cache_root)
    for name, feats in ((a.name, feats_a), (b.name, feats_b)):
        if feats.num_unreadable:
            log.warning(
                "%s: %d of %d images unreadable and skipped",
                name,
                feats.num_unreadable,
                feats.num_requested,
            )
    value = frechet_from_features(feats_a.features, feats_b.features)
    return FidResult(
        value,
        a.name,
        b.name,
        len(feats_a.features),
        len(feats_b.features),
        extractor.name,
        feats_a.from_cache,
        feats_b.from_cache,
    )
