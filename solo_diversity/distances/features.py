# SPDX-License-Identifier: MIT
"""Images of an index sample -> network inputs -> pooled features, cached on disk.

This module owns the input pipeline shared by FID and VisualDNA: read encoded bytes from the index
(no exported folders), decode to RGB, resize with clean-fid's "clean" semantics (Parmar et al.,
arXiv:2104.11222: each channel resized as a float image with PIL bicubic, clipped to [0, 255],
never quantised), then ``x * scale``, normalised by the extractor's mean and std. It also owns the
feature cache: pooled features of one (dataset sample, extractor) are stored once as
``feats-<extractor>-<weights fingerprint>-<sample key>.npy``, so a dataset compared against six
others is embedded once. Unreadable images are skipped and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from solo_diversity.data.decode import UnreadableImage, decode_image
from solo_diversity.distances.samples import DatasetSample

if TYPE_CHECKING:
    from solo_diversity.distances.extractors import Extractor

log = logging.getLogger(__name__)


def clean_resize(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Resize like clean-fid's ``mode="clean"``: per-channel float PIL bicubic, clipped.

    Args:
        img: an RGB image.
        size: output ``(H, W)``.

    Returns:
        (H, W, 3) float32 array with values in [0, 255].
    """
    height, width = size
    pixels = np.asarray(img.convert("RGB"), dtype=np.float32)
    channels = [
        np.asarray(
            Image.fromarray(pixels[:, :, c], mode="F").resize(
                (width, height), resample=Image.Resampling.BICUBIC
            )
        ).clip(0, 255)
        for c in range(3)
    ]
    return np.stack(channels, axis=2).astype(np.float32)


class IndexImages(Dataset):
    """Positions of an index -> resized, normalised tensors (``None`` for an unreadable image).

    Args:
        sample: the dataset sample to read.
        size: network input ``(H, W)``.
        scale: factor applied to [0, 255] pixels (1/255 for [0, 1] networks, 1 for Inception).
        mean: per-channel mean subtracted after scaling.
        std: per-channel std divided after scaling.
    """

    def __init__(
        self,
        sample: DatasetSample,
        size: tuple[int, int],
        scale: float,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
    ) -> None:
        self.index = sample.index
        self.positions = sample.positions
        self.size = size
        self.scale = scale
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> torch.Tensor | None:
        position = int(self.positions[i])
        try:
            img = decode_image(self.index.read_bytes(position))
        except (UnreadableImage, OSError):
            log.warning(
                "skipping unreadable image %s in %s",
                self.index.entry_name(position),
                self.index.path,
            )
            return None
        pixels = torch.from_numpy(clean_resize(img, self.size)).permute(2, 0, 1)
        return (pixels * self.scale - self.mean) / self.std


def collate_readable(items: list[torch.Tensor | None]) -> torch.Tensor:
    """Stack the readable images of a batch: (B', 3, H, W), B' <= B (may be 0)."""
    kept = [t for t in items if t is not None]
    if not kept:
        return torch.empty(0)
    return torch.stack(kept)


@dataclass(frozen=True)
class LoaderSettings:
    """How images are batched: batch size, DataLoader workers and the device."""

    batch_size: int = 64
    num_workers: int = 0
    device: str = "cpu"


def image_loader(
    sample: DatasetSample, extractor: Extractor, settings: LoaderSettings
) -> DataLoader:
    """A DataLoader over ``sample`` producing (B, 3, H, W) inputs for ``extractor``."""
    dataset = IndexImages(
        sample, extractor.input_size, extractor.scale, extractor.mean, extractor.std
    )
    return DataLoader(
        dataset,
        batch_size=settings.batch_size,
        shuffle=False,
        drop_last=False,
        num_workers=settings.num_workers,
        collate_fn=collate_readable,
    )


def iter_batches(loader: DataLoader, device: str) -> Iterator[torch.Tensor]:
    """Non-empty input batches moved to ``device``."""
    for batch in loader:
        if batch.shape[0]:
            yield batch.to(device)


@dataclass(frozen=True)
class FeatureSet:
    """Pooled features of one dataset sample under one extractor.

    Attributes:
        features: (M', D) float32, one row per readable image in sample order.
        num_requested: M, the images in the sample.
        path: the cache file.
        from_cache: whether they were read from ``path`` instead of computed.
    """

    features: np.ndarray
    num_requested: int
    path: Path
    from_cache: bool

    @property
    def num_unreadable(self) -> int:
        """Images of the sample that could not be decoded."""
        return self.num_requested - len(self.features)


def feature_cache_path(
    sample: DatasetSample, extractor: Extractor, cache_root: Path | None = None
) -> Path:
    """``<cache dir>/feats-<extractor>-<fingerprint[:12]>-<sample key>.npy``."""
    name = f"feats-{extractor.slug}-{extractor.fingerprint[:12]}-{sample.key}.npy"
    return sample.cache_dir(cache_root) / name


@torch.no_grad()
def compute_features(
    sample: DatasetSample, extractor: Extractor, settings: LoaderSettings | None = None
) -> np.ndarray:
    """Embed every readable image of ``sample`` with a pooled extractor.

    Args:
        sample: the images.
        extractor: a pooled extractor: ``module(x (B, 3, H, W)) -> (B, D)``.
        settings: batching and device.

    Returns:
        (M', D) float32 features.
    """
    settings = settings or LoaderSettings()
    module = extractor.module.to(settings.device).eval()
    chunks = [
        module(batch).reshape(batch.shape[0], -1).float().cpu().numpy()
        for batch in iter_batches(image_loader(sample, extractor, settings), settings.device)
    ]
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)


def cached_features(
    sample: DatasetSample,
    extractor: Extractor,
    *,
    settings: LoaderSettings | None = None,
    cache_root: Path | None = None,
) -> FeatureSet:
    """Features of ``sample``, read from the cache when present, else computed and stored.

    The key is (index fingerprint + exact positions, extractor name, weights fingerprint), so a
    different sample count, seed, subset or weight file never reuses a stale file.

    Args:
        sample: the images.
        extractor: a pooled extractor.
        settings: batching and device.
        cache_root: cache root; ``None`` = beside the index.

    Returns:
        The :class:`FeatureSet`.
    """
    path = feature_cache_path(sample, extractor, cache_root)
    if path.exists():
        log.info("feature cache hit: %s", path)
        return FeatureSet(np.load(path), len(sample), path, True)
    log.info("embedding %d images of %s with %s", len(sample), sample.name, extractor.name)
    features = compute_features(sample, extractor, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, features)
    tmp.replace(path)
    return FeatureSet(features, len(sample), path, False)
