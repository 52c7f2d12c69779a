# SPDX-License-Identifier: MIT
"""DALI graphs for pretraining views and for probe images (optional dependency: nvidia-dali).

This module owns what DALI computes once a feed (:mod:`~solo_diversity.data.dali_feed`) has
handed it screened encoded bytes: decode on the CPU (``device_id=None``) or with nvJPEG
(``"mixed"``, on ``device_id``), then, per view, solo-learn's schema: random resized crop (scale
range, aspect 3/4..4/3, bicubic), colour jitter with probability ``prob`` (brightness, contrast,
saturation factors ~ U[max(0, 1 - s), 1 + s], hue ~ U[-h, h] turns; DALI applies them in one fixed
order), grayscale, Gaussian blur (sigma ~ U[0.1, 2] px), solarization, equalization, horizontal
flip and mean/std normalisation. Each optional block runs per sample under a DALI conditional, so
a sample that skips a block costs nothing for it.

Outputs of the pretraining graph: ``view_0 .. view_{V-1}`` float (3, S_k, S_k) (large crops first),
``position``, ``label``, ``skipped`` int64. The probe graph outputs ``image``, ``position``,
``label``, ``skipped``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from solo_diversity.data.augment import (
    BLUR_SIGMA,
    SOLARIZE_THRESHOLD,
    AugmentationSpec,
    blur_kernel_size,
)
from solo_diversity.data.fast_cpu import RRC_RATIO, ordered_specs
from solo_diversity.errors import UserError

DALI_DEVICES = ("cpu", "gpu")
FEED_OUTPUTS = ("encoded", "position", "label", "skipped")


@dataclass(frozen=True)
class DaliRuntime:
    """Where and how wide a pipeline runs.

    Attributes:
        batch_size: per-device batch size B.
        num_threads: DALI's CPU operator threads.
        py_workers: processes that run the feed (0 = in the calling thread).
        device: ``"cpu"`` (``device_id=None``) or ``"gpu"`` (nvJPEG decode and GPU operators).
        device_id: the GPU (local rank) for ``device="gpu"``.
        seed: the pipeline's random seed (make it differ per rank).

    """

    batch_size: int
    num_threads: int = 2
    py_workers: int = 0
    device: str = "cpu"
    device_id: int | None = None
    seed: int = 0


def dali_module() -> Any:
    """``nvidia.dali``, or a UserError saying how to install it."""
    try:
        import nvidia.dali as dali
    except ImportError as err:
        raise UserError(
            "data.format=dali needs NVIDIA DALI: pip install 'solo-diversity[dali]' "
            "(nvidia-dali-cuda130; use the dali-cuda120 extra for CUDA 12 drivers)"
        ) from err
    return dali


def check_device(device: str) -> str:
    """Validate ``dali.device``."""
    if device not in DALI_DEVICES:
        raise UserError(f"unknown dali.device {device!r}; valid: {', '.join(DALI_DEVICES)}")
    return device


def resolve_device(device: str, *, on_gpu: bool) -> str:
    """``dali.device`` -> ``"cpu"`` or ``"gpu"``; ``auto`` follows ``on_gpu`` (the model's device).

    Raises:
        UserError: an unknown value, or ``gpu`` on a machine without a visible GPU.
    """
    if device == "auto":
        return "gpu" if on_gpu else "cpu"
    if check_device(device) == "gpu" and not torch.cuda.is_available():
        raise UserError("dali.device=gpu but no GPU is visible; use dali.device=cpu")
    return device


def _factor(fn: Any, strength: float) -> Any:
    """A jitter factor ~ U[max(0, 1 - s), 1 + s] per sample (torchvision's ColorJitter law)."""
    return fn.random.uniform(range=[max(0.0, 1.0 - strength), 1.0 + strength])


def _normalize(fn: Any, types: Any, view: Any, mean: Sequence[float], std: Sequence[float],
               device: str, mirror: Any = 0) -> Any:
    return fn.crop_mirror_normalize(
        view, device=device, dtype=types.FLOAT, output_layout="CHW", mirror=mirror,
        mean=[255.0 * m for m in mean], std=[255.0 * s for s in std],
    )


def _view(dali: Any, images: Any, spec: AugmentationSpec, mean: Sequence[float],
          std: Sequence[float], device: str) -> Any:
    """One augmented view of a batch of decoded HWC uint8 images (inside a conditional graph)."""
    fn, types = dali.fn, dali.types
    size = spec.crop_size
    if spec.rrc.enabled:
        view = fn.random_resized_crop(
            images, device=device, size=[size, size],
            random_area=[spec.rrc.crop_min_scale, spec.rrc.crop_max_scale],
            random_aspect_ratio=list(RRC_RATIO), interp_type=types.INTERP_CUBIC, antialias=True,
        )
    else:
        view = fn.resize(images, device=device, resize_shorter=size,
                         interp_type=types.INTERP_CUBIC)
    cj = spec.color_jitter
    factors = {name: _factor(fn, strength) for name, strength in (
        ("brightness", cj.brightness), ("contrast", cj.contrast), ("saturation", cj.saturation))
        if strength > 0}
    if cj.hue > 0:
        factors["hue"] = fn.random.uniform(range=[-360.0 * cj.hue, 360.0 * cj.hue])
    if factors and cj.prob > 0 and fn.random.coin_flip(probability=cj.prob):
        view = fn.color_twist(view, device=device, **factors)
    if spec.grayscale_prob > 0 and fn.random.coin_flip(probability=spec.grayscale_prob):
        view = fn.hsv(view, device=device, saturation=0.0)
    if spec.gaussian_blur_prob > 0 and fn.random.coin_flip(probability=spec.gaussian_blur_prob):
        view = fn.gaussian_blur(view, device=device, window_size=blur_kernel_size(size),
                                sigma=fn.random.uniform(range=list(BLUR_SIGMA)))
    if spec.solarization_prob > 0 and fn.random.coin_flip(probability=spec.solarization_prob):
        wide = fn.cast(view, dtype=types.INT16)
        flipped = fn.cast(wide >= int(SOLARIZE_THRESHOLD), dtype=types.INT16)
        view = fn.cast(wide + flipped * (255 - 2 * wide), dtype=types.UINT8)
    if spec.equalization_prob > 0 and fn.random.coin_flip(probability=spec.equalization_prob):
        view = fn.equalize(view, device=device)
    mirror = (fn.random.coin_flip(probability=spec.horizontal_flip_prob)
              if spec.horizontal_flip_prob > 0 else 0)
    return _normalize(fn, types, view,
                      spec.mean if spec.mean is not None else mean,
                      spec.std if spec.std is not None else std, device, mirror)


def _feed_and_decode(dali: Any, feed: Callable[[Any], Any], run: DaliRuntime) -> Any:
    fn, types = dali.fn, dali.types
    encoded, position, label, skipped = fn.external_source(
        source=feed, num_outputs=len(FEED_OUTPUTS), batch=False, parallel=run.py_workers > 0,
        dtype=[types.UINT8, types.INT64, types.INT64, types.INT64],
    )
    # EXIF orientation is ignored, as in decode_image and solo-learn's PIL loader.
    images = fn.decoders.image(encoded, device="mixed" if run.device == "gpu" else "cpu",
                               output_type=types.RGB, adjust_orientation=False)
    return images, position, label, skipped


def _build(dali: Any, graph: Callable[[], tuple[Any, ...]], run: DaliRuntime) -> Any:
    check_device(run.device)
    pipe = dali.pipeline_def(graph, enable_conditionals=True)(
        batch_size=run.batch_size, num_threads=max(1, run.num_threads),
        device_id=run.device_id if run.device == "gpu" else None, seed=run.seed,
        py_num_workers=max(1, run.py_workers), py_start_method="spawn",
    )
    pipe.build()
    return pipe


def build_pretrain_pipeline(
    feed: Callable[[Any], Any],
    specs: Sequence[AugmentationSpec],
    mean: Sequence[float],
    std: Sequence[float],
    run: DaliRuntime,
) -> Any:
    """A built DALI pipeline yielding ``(view_0, ..., view_{V-1}, position, label, skipped)``.

    Args:
        feed: per-sample source (a picklable :class:`~solo_diversity.data.dali_feed.IndexFeed`).
        specs: resolved augmentations (large crops first in the output).
        mean: default per-channel means.
        std: default per-channel standard deviations.
        run: batch size, threads, feed processes, device and seed.

    Raises:
        UserError: DALI missing or an unknown ``device``.

    """
    dali = dali_module()
    views = [s for s in ordered_specs(specs) for _ in range(s.num_crops)]

    def graph() -> tuple[Any, ...]:
        images, position, label, skipped = _feed_and_decode(dali, feed, run)
        return (*[_view(dali, images, s, mean, std, run.device) for s in views],
                position, label, skipped)

    return _build(dali, graph, run)


def build_probe_pipeline(
    feed: Callable[[Any], Any],
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    train: bool,
    crop_fraction: float,
    run: DaliRuntime,
) -> Any:
    """A built DALI pipeline of probe images ``(image, position, label, skipped)``.

    ``train``: random resized crop (scale 0.08..1, bicubic) to ``size`` + horizontal flip, as
    solo-learn's linear training. Otherwise: resize the short side to
    ``round(size / crop_fraction)`` (bilinear) + centre crop ``size``, as
    :func:`~solo_diversity.data.eval_transform` (Resize 256 + CenterCrop 224 at ImageNet scale).
    """
    dali = dali_module()
    fn, types = dali.fn, dali.types
    device = run.device

    def graph() -> tuple[Any, ...]:
        images, position, label, skipped = _feed_and_decode(dali, feed, run)
        if train:
            image = fn.random_resized_crop(images, device=device, size=[size, size],
                                           random_area=[0.08, 1.0],
                                           random_aspect_ratio=list(RRC_RATIO),
                                           interp_type=types.INTERP_CUBIC, antialias=True)
            mirror = fn.random.coin_flip(probability=0.5)
        else:
            image = fn.resize(images, device=device, resize_shorter=round(size / crop_fraction),
                              interp_type=types.INTERP_LINEAR, antialias=True)
            image = fn.crop(image, device=device, crop=[size, size])
            mirror = 0
        return _normalize(fn, types, image, mean, std, device, mirror), position, label, skipped

    return _build(dali, graph, run)
