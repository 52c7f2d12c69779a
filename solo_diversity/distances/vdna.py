# SPDX-License-Identifier: MIT
"""VisualDNA distances between two index samples, computed with the vdna package.

VisualDNA (Ramtoula et al., "Visual DNA", CVPR 2023) describes a dataset by one histogram per
neuron: every activation of neuron k (over images and spatial positions/tokens) is normalised by a
fixed per-neuron range, ``(a - m_k) / s_k`` with ``m_k = 1.2 (min_k + max_k) / 2`` and
``s_k = 1.2 (max_k - min_k) / 2``, clamped to [-1, 1] and counted into ``bins`` bins. Two datasets
are compared by the Earth Mover's Distance of the normalised histograms, averaged over neurons:

    EMD(A, B) = mean_k  sum_j | sum_{i<=j} (h^A_k[i] - h^B_k[i]) |.

The per-neuron ranges are a property of the extractor, shared by every dataset it compares: read
from ``Extractor.ranges_path`` (vdna's published file for MUGS), or computed once from a reference
dataset and written there. Images come from :mod:`solo_diversity.distances.features` through vdna's
``FeatureExtractionModel`` interface (a subclass whose data loader reads the index directly). A
VDNA is saved beside its index and reused. The paper reports these in Table 3 (Hammoud et al.,
arXiv:2403.13808).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from solo_diversity.distances.extractors import Extractor
from solo_diversity.distances.features import LoaderSettings, image_loader
from solo_diversity.distances.samples import DatasetSample
from solo_diversity.errors import UserError

log = logging.getLogger(__name__)

Ranges = dict[str, dict[str, dict[str, float]]]  # vdna's {"mins_per_neuron": {layer: {k: v}}, ...}


def _feature_model(
    sample: DatasetSample, extractor: Extractor, ranges: Ranges | None, settings: LoaderSettings
) -> Any:
    """A fresh vdna ``FeatureExtractionModel`` running ``extractor`` over ``sample``.

    A new object per VDNA type: vdna's ``fill_vdna`` mutates the model's extraction settings.
    """
    from vdna.networks import FeatureExtractionModel
    from vdna.utils.settings import ExtractionSettings, NetworkSettings

    class IndexFeatureModel(FeatureExtractionModel):  # type: ignore[misc]
        """vdna's custom-extractor interface, fed from an index instead of a folder."""

        def get_features(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
            return self.net(batch)

        def get_batch_features(self, batch: torch.Tensor, device: Any) -> dict[str, torch.Tensor]:
            if batch.shape[0] == 0:  # every image of the batch was unreadable
                return {}
            return self.get_features(batch.to(device))

        def get_dataloader(self, data_settings: Any) -> Any:
            return image_loader(sample, extractor, settings)

    assert extractor.layers is not None, "VisualDNA needs a layered extractor"
    network = NetworkSettings(
        list(extractor.mean),
        list(extractor.std),
        dict(extractor.layers),
        extractor.input_size,
        extractor.name,
    )
    extraction = ExtractionSettings(
        device=settings.device,
        batch_size=settings.batch_size,
        num_workers=settings.num_workers,
        verbose=False,
        n_sample_images=0,
    )
    empty: Ranges = {"mins_per_neuron": {}, "maxs_per_neuron": {}}
    model = IndexFeatureModel(network, extraction, ranges or empty)
    model.net = extractor.module.to(settings.device).eval()
    model.name = extractor.name
    return model


def _data_settings(sample: DatasetSample) -> Any:
    from vdna.utils.settings import DataSettings

    source = f"{sample.index.path} ({sample.name}, {len(sample)} images, key {sample.key})"
    return DataSettings(source=source, num_images=len(sample), shuffle_files=False)


def compute_ranges(
    sample: DatasetSample, extractor: Extractor, settings: LoaderSettings | None = None
) -> Ranges:
    """Per-neuron min and max activation over ``sample`` (vdna's ``activation-ranges`` VDNA).

    Returns:
        ``{"mins_per_neuron": {layer: {"k": min}}, "maxs_per_neuron": {layer: {"k": max}}}``.
    """
    from vdna.vdnas import VDNAActivationRanges

    settings = settings or LoaderSettings()
    result = VDNAActivationRanges()
    result.fill_vdna(_feature_model(sample, extractor, None, settings), _data_settings(sample))
    ranges: Ranges = {"mins_per_neuron": {}, "maxs_per_neuron": {}}
    for layer, values in result.data.items():
        for kind, key in (("min", "mins_per_neuron"), ("max", "maxs_per_neuron")):
            flat = values[kind].reshape(-1).tolist()
            ranges[key][layer] = {str(k): float(v) for k, v in enumerate(flat)}
    return ranges


def ranges_digest(ranges: Ranges) -> str:
    """12 hex chars of the sha256 of the ranges as canonical JSON (part of the VDNA cache key)."""
    return hashlib.sha256(json.dumps(ranges, sort_keys=True).encode()).hexdigest()[:12]


def ensure_ranges(
    extractor: Extractor,
    reference: DatasetSample,
    *,
    settings: LoaderSettings | None = None,
    cache_root: Path | None = None,
) -> Ranges:
    """The extractor's activation ranges: read them, or compute them once from ``reference``.

    Args:
        extractor: a layered extractor; its ``ranges_path`` is read when it exists and written
            when it does not. Without a ``ranges_path`` they are kept in the reference's cache dir.
        reference: the dataset that defines the ranges when none exist yet.
        settings: batching and device.
        cache_root: cache root for extractors without ``ranges_path``.

    Returns:
        The ranges in vdna's format.
    """
    path = extractor.ranges_path or (
        reference.cache_dir(cache_root)
        / f"ranges-{extractor.slug}-{extractor.fingerprint[:12]}-{reference.key}.json"
    )
    if path.is_file():
        with open(path) as handle:
            ranges: Ranges = json.load(handle)
        return ranges
    log.warning(
        "no activation ranges for %s at %s: computing them from %s (%d images)",
        extractor.name,
        path,
        reference.name,
        len(reference),
    )
    ranges = compute_ranges(reference, extractor, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ranges))
    return ranges


def vdna_cache_path(
    sample: DatasetSample,
    extractor: Extractor,
    ranges: Ranges,
    bins: int,
    cache_root: Path | None = None,
) -> Path:
    """``<cache dir>/vdna-<extractor>-<fp>-r<ranges>-b<bins>-<key>`` (vdna adds .json/.npz)."""
    name = (
        f"vdna-{extractor.slug}-{extractor.fingerprint[:12]}-r{ranges_digest(ranges)}"
        f"-b{bins}-{sample.key}"
    )
    return sample.cache_dir(cache_root) / name


def cached_vdna(
    sample: DatasetSample,
    extractor: Extractor,
    ranges: Ranges,
    *,
    bins: int = 1000,
    settings: LoaderSettings | None = None,
    cache_root: Path | None = None,
) -> tuple[Any, bool]:
    """The ``histogram-<bins>`` VDNA of ``sample``: loaded when saved before, else filled and saved.

    Returns:
        ``(vdna.VDNA, from_cache)``.
    """
    from vdna import load_vdna_from_files
    from vdna.vdnas import VDNAHist

    if bins < 2:
        raise UserError(f"--bins must be at least 2, got {bins}")
    settings = settings or LoaderSettings()
    path = vdna_cache_path(sample, extractor, ranges, bins, cache_root)
    if path.with_name(path.name + ".npz").is_file():
        log.info("VDNA cache hit: %s", path)
        return load_vdna_from_files(path, device=settings.device), True
    log.info(
        "filling a %d-bin VDNA of %s (%d images) with %s",
        bins,
        sample.name,
        len(sample),
        extractor.name,
    )
    result = VDNAHist(hist_nb_bins=bins)
    result.fill_vdna(_feature_model(sample, extractor, ranges, settings), _data_settings(sample))
    result.save(path)
    return result, False


def emd(vdna_a: Any, vdna_b: Any) -> float:
    """The vdna package's EMD between two histogram VDNAs, averaged over all neurons."""
    from vdna import EMD

    return float(EMD(vdna_a, vdna_b))


@dataclass(frozen=True)
class VdnaResult:
    """One VisualDNA EMD and what it was computed on."""

    emd: float
    a: str
    b: str
    n_a: int
    n_b: int
    extractor: str
    bins: int
    cached_a: bool
    cached_b: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def vdna_distance(
    a: DatasetSample,
    b: DatasetSample,
    extractor: Extractor,
    *,
    bins: int = 1000,
    reference: DatasetSample | None = None,
    settings: LoaderSettings | None = None,
    cache_root: Path | None = None,
) -> VdnaResult:
    """VisualDNA EMD between two dataset samples.

    Args:
        a: first dataset sample.
        b: second dataset sample.
        extractor: a layered extractor (``mugs_vit_base``, ``dinov2_vit_base``).
        bins: histogram bins per neuron (the paper: 1000).
        reference: defines the activation ranges when the extractor has none yet (default ``a``).
        settings: batching and device.
        cache_root: cache root; ``None`` = beside each index.

    Returns:
        The :class:`VdnaResult`.
    """
    ranges = ensure_ranges(extractor, reference or a, settings=settings, cache_root=cache_root)
    vdna_a, hit_a = cached_vdna(
        a, extractor, ranges, bins=bins, settings=settings, cache_root=cache_root
    )
    vdna_b, hit_b = cached_vdna(
        b, extractor, ranges, bins=bins, settings=settings, cache_root=cache_root
    )
    return VdnaResult(
        emd(vdna_a, vdna_b),
        a.name,
        b.name,
        int(vdna_a.num_images),
        int(vdna_b.num_images),
        extractor.name,
        bins,
        hit_a,
        hit_b,
    )
