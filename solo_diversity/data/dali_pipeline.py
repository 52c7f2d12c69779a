# SPDX-License-Identifier: MIT
"""DALI pretraining pipeline built from solo-learn's augmentation specs (optional: nvidia-dali).

This module owns :func:`build_dali_pipeline`: files (and labels) of an index subset are read by
``fn.readers.file`` (sharded by ``shard_id``/``num_shards``, reshuffled by DALI's reader), decoded
on the CPU (``device_id=None``) or with nvJPEG (``"mixed"``), and every view gets solo-learn's
schema: random resized crop (scale range, aspect 3/4..4/3), colour jitter applied with probability
``prob`` (brightness, contrast, saturation factors ~ U[max(0, 1 - s), 1 + s], hue ~ U[-h, h] turns),
grayscale, Gaussian blur (sigma ~ U[0.1, 2]), solarization, horizontal flip and mean/std
normalisation. Outputs: ``view_0, ..., view_{V-1}`` float (3, S, S), ``label`` int.

Status: the pipeline runs on CPU and is benchmarked; the Lightning data module around it
(index-position outputs, epoch reshuffle from EpochSampler, ledger counts) is not built yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from solo_diversity.data.augment import BLUR_SIGMA, AugmentationSpec, blur_kernel_size
from solo_diversity.data.fast_cpu import RRC_RATIO, ordered_specs
from solo_diversity.errors import UserError

DALI_DEVICES = ("cpu", "gpu")


def _dali() -> Any:
    try:
        import nvidia.dali as dali
    except ImportError as err:
        raise UserError(
            "data.format=dali needs NVIDIA DALI: pip install 'solo-diversity[dali]' "
            "(nvidia-dali-cuda130; use the dali-cuda120 extra for CUDA 12 drivers)"
        ) from err
    return dali


def _uniform_or_one(fn: Any, applied: Any, lo: float, hi: float) -> Any:
    """A factor ~ U[lo, hi] where ``applied`` is 1, else exactly 1."""
    return applied * fn.random.uniform(range=[lo, hi]) + (1 - applied)


def _view(fn: Any, types: Any, images: Any, spec: AugmentationSpec, mean: Sequence[float],
          std: Sequence[float], device: str) -> Any:
    size = spec.crop_size
    if spec.rrc.enabled:
        view = fn.random_resized_crop(
            images, device=device, size=[size, size],
            random_area=[spec.rrc.crop_min_scale, spec.rrc.crop_max_scale],
            random_aspect_ratio=list(RRC_RATIO), interp_type=types.INTERP_CUBIC,
            antialias=True,
        )
    else:
        view = fn.resize(images, device=device, resize_shorter=size,
                         interp_type=types.INTERP_CUBIC)
    cj = spec.color_jitter
    if cj.prob > 0:
        on = fn.cast(fn.random.coin_flip(probability=cj.prob), dtype=types.FLOAT)
        view = fn.color_twist(
            view, device=device,
            brightness=_uniform_or_one(fn, on, max(0.0, 1 - cj.brightness), 1 + cj.brightness),
            contrast=_uniform_or_one(fn, on, max(0.0, 1 - cj.contrast), 1 + cj.contrast),
            saturation=_uniform_or_one(fn, on, max(0.0, 1 - cj.saturation), 1 + cj.saturation),
            hue=on * fn.random.uniform(range=[-360.0 * cj.hue, 360.0 * cj.hue]),
        )
    if spec.grayscale_prob > 0:
        grey_on = fn.random.coin_flip(probability=spec.grayscale_prob)
        keep = 1.0 - fn.cast(grey_on, dtype=types.FLOAT)
        view = fn.hsv(view, device=device, saturation=keep)
    if spec.gaussian_blur_prob > 0:
        on = fn.cast(fn.random.coin_flip(probability=spec.gaussian_blur_prob), dtype=types.FLOAT)
        sigma = on * fn.random.uniform(range=list(BLUR_SIGMA)) + (1 - on) * 1e-3
        view = fn.gaussian_blur(view, device=device, window_size=blur_kernel_size(size),
                                sigma=sigma)
    if spec.solarization_prob > 0:
        on = fn.random.coin_flip(probability=spec.solarization_prob, dtype=types.UINT8)
        inverted = fn.cast(255 - view, dtype=types.UINT8)
        view = fn.cast(view * (1 - on * (view >= 128)) + inverted * (on * (view >= 128)),
                       dtype=types.UINT8)
    mirror = fn.random.coin_flip(probability=spec.horizontal_flip_prob) if (
        spec.horizontal_flip_prob > 0) else 0
    mean = spec.mean if spec.mean is not None else mean
    std = spec.std if spec.std is not None else std
    return fn.crop_mirror_normalize(
        view, device=device, dtype=types.FLOAT, output_layout="CHW", mirror=mirror,
        mean=[255.0 * m for m in mean], std=[255.0 * s for s in std],
    )


def build_dali_pipeline(
    files: Sequence[str],
    labels: Sequence[int],
    specs: Sequence[AugmentationSpec],
    mean: Sequence[float],
    std: Sequence[float],
    *,
    batch_size: int,
    num_threads: int,
    device: str = "cpu",
    device_id: int | None = None,
    shard_id: int = 0,
    num_shards: int = 1,
    seed: int = 0,
) -> Any:
    """A built DALI pipeline yielding ``(view_0, ..., view_{V-1}, label)`` per batch.

    Args:
        files: absolute image paths of the subset.
        labels: one int per file (-1 when unlabeled).
        specs: resolved augmentations (large crops first in the output).
        mean: default per-channel means.
        std: default per-channel standard deviations.
        batch_size: per-device batch size.
        num_threads: DALI CPU worker threads.
        device: ``"cpu"`` (decode and augment on the CPU, ``device_id=None``) or ``"gpu"``
            (nvJPEG ``mixed`` decode and GPU augmentations on ``device_id``).
        device_id: the GPU (local rank) for ``device="gpu"``.
        shard_id: this rank.
        num_shards: world size (DALI's reader shards disjointly).
        seed: the pipeline's random seed.

    Returns:
        A built ``nvidia.dali.Pipeline``.

    Raises:
        UserError: DALI missing or an unknown ``device``.

    """
    if device not in DALI_DEVICES:
        raise UserError(f"unknown dali.device {device!r}; valid: {', '.join(DALI_DEVICES)}")
    dali = _dali()
    fn, types = dali.fn, dali.types
    pipe = dali.Pipeline(batch_size=batch_size, num_threads=num_threads,
                         device_id=device_id if device == "gpu" else None, seed=seed)
    with pipe:
        encoded, label = fn.readers.file(
            files=list(files), labels=list(labels), shard_id=shard_id, num_shards=num_shards,
            random_shuffle=True, seed=seed, name="reader",
        )
        decoder_device = "mixed" if device == "gpu" else "cpu"
        images = fn.decoders.image(encoded, device=decoder_device, output_type=types.RGB)
        views = [
            _view(fn, types, images, spec, mean, std, device)
            for spec in ordered_specs(specs) for _ in range(spec.num_crops)
        ]
        pipe.set_outputs(*views, label)
    pipe.build()
    return pipe
