# SPDX-License-Identifier: MIT
"""DALI graphs for pretraining views and for probe images (optional dependency: nvidia-dali).

This module owns what DALI computes once a feed (:mod:`~solo_diversity.data.dali.feed`) has
handed it screened encoded bytes: decode on the CPU (``device_id=None``) or with nvJPEG
(``"mixed"``, on ``device_id``), then, per view, solo-learn's schema: random resized crop (scale
range, aspect 3/4..4/3, bicubic), colour jitter with probability ``prob`` (brightness, contrast,
saturation factors ~ U[max(0, 1 - s), 1 + s], hue ~ U[-h, h] turns; DALI applies them in one fixed
order), grayscale, Gaussian blur (sigma ~ U[0.1, 2] px), solarization, equalization, horizontal
flip and mean/std normalisation. Each optional block runs per sample under a DALI conditional, so
a sample that skips a block costs nothing for it.

The pretraining graph draws nothing from DALI's random operators: every random decision of a view
comes in with the sample as a row of :func:`view_params` (drawn by the feed from the sample's
seed, :func:`~solo_diversity.data.sampler.sample_seeds`), so a sample's views depend on its
(seed, pass, position) alone, not on the pipeline, its batch or a resume. The probe graph's
training view (RRC + flip) still draws from the pipeline's seed.

Outputs of the pretraining graph: ``view_0 .. view_{V-1}`` float (3, S_k, S_k) (large crops first),
``position``, ``label``, ``skipped`` int64. The probe graph outputs ``image``, ``position``,
``label``, ``skipped``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from solo_diversity.data.augment import (
    BLUR_SIGMA,
    SOLARIZE_THRESHOLD,
    AugmentationSpec,
    jitter_factor,
    ordered_specs,
)
from solo_diversity.data.fast_cpu import RRC_RATIO, rrc_box
from solo_diversity.errors import UserError

DALI_DEVICES = ("cpu", "gpu")
FEED_OUTPUTS = ("encoded", "position", "label", "skipped")

#: Slots of a :func:`view_params` row: the crop box as ROI (top, left, bottom, right) in pixels,
#: then the jitter gate and factors (hue in degrees), then the gates of the other blocks and the
#: blur sigma. A gate is 1.0 (apply) or 0.0.
ROI, JITTER, BRIGHTNESS, CONTRAST, SATURATION, HUE = slice(0, 4), 4, 5, 6, 7, 8
GRAYSCALE, BLUR, SIGMA, SOLARIZE, EQUALIZE, FLIP = 9, 10, 11, 12, 13, 14
NUM_PARAMS = 15
_NUM_UNIFORMS = 11  # jitter gate, 4 factors, grayscale, blur gate, sigma, solarize, equalize, flip


@dataclass(frozen=True)
class DaliRuntime:
    """Where and how wide a pipeline runs.

    Attributes:
        batch_size: per-device batch size B.
        num_threads: DALI's CPU operator threads.
        py_workers: processes that run the feed (0 = in the calling thread).
        device: ``"cpu"`` (``device_id=None``) or ``"gpu"`` (nvJPEG decode and GPU operators).
        device_id: the GPU (local rank) for ``device="gpu"``.
        seed: the seed of DALI's random operators (only the probe's training view has any).

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


def view_specs(specs: Sequence[AugmentationSpec]) -> tuple[AugmentationSpec, ...]:
    """One spec per output view: each spec ``num_crops`` times, large crops first."""
    return tuple(s for s in ordered_specs(specs) for _ in range(s.num_crops))


def _factor_of(u: float, strength: float) -> float:
    """A jitter factor ~ U[max(0, 1 - s), 1 + s] from a uniform u (torchvision's law)."""
    return float(jitter_factor("brightness", strength, u))


def view_params(spec: AugmentationSpec, height: int, width: int) -> np.ndarray:
    """Every random decision of one view of an (height, width) image, drawn from torch's RNG.

    The crop box is :func:`~solo_diversity.data.fast_cpu.rrc_box` (torchvision's law: 10 tries,
    then the centred fallback; not drawn when rrc is disabled), then 11 uniforms: the jitter gate
    (< ``prob``), the brightness/contrast/saturation factors ~ U[max(0, 1 - s), 1 + s], the hue
    ~ U[-h, h] turns (as degrees), the grayscale gate, the blur gate and sigma ~ U[0.1, 2] px, the
    solarization, equalization and flip gates. A block with strength or probability 0 keeps its
    neutral value. Inside :func:`~solo_diversity.data.datasets.seeded_draws` the row is a function
    of the seed alone.

    Args:
        spec: the view's augmentation.
        height: the decoded image's height H.
        width: its width W.

    Returns:
        (NUM_PARAMS,) float32, laid out as the slot constants of this module say.

    """
    out = np.zeros(NUM_PARAMS, dtype=np.float32)
    top, left, h, w = (
        rrc_box(height, width, (spec.rrc.crop_min_scale, spec.rrc.crop_max_scale))
        if spec.rrc.enabled
        else (0, 0, height, width)
    )
    out[ROI] = (top, left, top + h, left + w)
    u = torch.rand(_NUM_UNIFORMS, dtype=torch.float64).tolist()
    cj = spec.color_jitter
    out[JITTER] = float(u[0] < cj.prob)
    out[BRIGHTNESS] = _factor_of(u[1], cj.brightness)
    out[CONTRAST] = _factor_of(u[2], cj.contrast)
    out[SATURATION] = _factor_of(u[3], cj.saturation)
    out[HUE] = 360.0 * (2.0 * u[4] - 1.0) * cj.hue
    out[GRAYSCALE] = float(u[5] < spec.grayscale_prob)
    out[BLUR] = float(u[6] < spec.gaussian_blur_prob)
    out[SIGMA] = BLUR_SIGMA[0] + (BLUR_SIGMA[1] - BLUR_SIGMA[0]) * u[7]
    out[SOLARIZE] = float(u[8] < spec.solarization_prob)
    out[EQUALIZE] = float(u[9] < spec.equalization_prob)
    out[FLIP] = float(u[10] < spec.horizontal_flip_prob)
    return out


def _normalize(
    fn: Any,
    types: Any,
    view: Any,
    mean: Sequence[float],
    std: Sequence[float],
    device: str,
    mirror: Any = 0,
) -> Any:
    return fn.crop_mirror_normalize(
        view,
        device=device,
        dtype=types.FLOAT,
        output_layout="CHW",
        mirror=mirror,
        mean=[255.0 * m for m in mean],
        std=[255.0 * s for s in std],
    )


def _view(
    dali: Any,
    images: Any,
    params: Any,
    spec: AugmentationSpec,
    mean: Sequence[float],
    std: Sequence[float],
    device: str,
) -> Any:
    """One view of a batch of decoded HWC uint8 images, each sample's decisions in ``params``.

    ``params`` is the (NUM_PARAMS,) float32 :func:`view_params` row of each sample (a CPU feed
    output, so the same argument inputs drive CPU and GPU operators); inside a conditional graph.
    """
    fn, types = dali.fn, dali.types
    size = spec.crop_size
    if spec.rrc.enabled:
        view = fn.resize(
            images,
            device=device,
            size=[size, size],
            roi_start=params[0:2],
            roi_end=params[2:4],
            roi_relative=False,
            interp_type=types.INTERP_CUBIC,
            antialias=True,
        )
    else:
        view = fn.resize(images, device=device, resize_shorter=size, interp_type=types.INTERP_CUBIC)
    cj = spec.color_jitter
    factors = {
        name: params[slot]
        for name, slot, strength in (
            ("brightness", BRIGHTNESS, cj.brightness),
            ("contrast", CONTRAST, cj.contrast),
            ("saturation", SATURATION, cj.saturation),
            ("hue", HUE, cj.hue),
        )
        if strength > 0
    }
    if factors and cj.prob > 0 and params[JITTER] > 0.5:
        view = fn.color_twist(view, device=device, **factors)
    if spec.grayscale_prob > 0 and params[GRAYSCALE] > 0.5:
        view = fn.hsv(view, device=device, saturation=0.0)
    if spec.gaussian_blur_prob > 0 and params[BLUR] > 0.5:
        # sigma alone: DALI's window is then 2 ceil(3 sigma) + 1 per sample, the fast path's
        # truncation (``sigma_kernel``), not the 23 taps a 224 px crop's fixed window would take.
        view = fn.gaussian_blur(view, device=device, sigma=params[SIGMA])
    if spec.solarization_prob > 0 and params[SOLARIZE] > 0.5:
        wide = fn.cast(view, dtype=types.INT16)
        flipped = fn.cast(wide >= int(SOLARIZE_THRESHOLD), dtype=types.INT16)
        view = fn.cast(wide + flipped * (255 - 2 * wide), dtype=types.UINT8)
    if spec.equalization_prob > 0 and params[EQUALIZE] > 0.5:
        view = fn.equalize(view, device=device)
    mirror = fn.cast(params[FLIP], dtype=types.INT32) if spec.horizontal_flip_prob > 0 else 0
    return _normalize(
        fn,
        types,
        view,
        spec.mean if spec.mean is not None else mean,
        spec.std if spec.std is not None else std,
        device,
        mirror,
    )


def _feed_and_decode(
    dali: Any, feed: Callable[[Any], Any], run: DaliRuntime, num_views: int = 0
) -> tuple[Any, ...]:
    """The feed's outputs, decoded images in place of the encoded bytes.

    That is (images, position, label, skipped, then ``num_views`` :func:`view_params` rows).
    """
    fn, types = dali.fn, dali.types
    encoded, *outputs = fn.external_source(
        source=feed,
        num_outputs=len(FEED_OUTPUTS) + num_views,
        batch=False,
        parallel=run.py_workers > 0,
        dtype=[types.UINT8, types.INT64, types.INT64, types.INT64] + [types.FLOAT] * num_views,
    )
    # EXIF orientation is ignored, as in decode_image and solo-learn's PIL loader.
    images = fn.decoders.image(
        encoded,
        device="mixed" if run.device == "gpu" else "cpu",
        output_type=types.RGB,
        adjust_orientation=False,
    )
    return images, *outputs


def _build(dali: Any, graph: Callable[[], tuple[Any, ...]], run: DaliRuntime) -> Any:
    check_device(run.device)
    pipe = dali.pipeline_def(graph, enable_conditionals=True)(
        batch_size=run.batch_size,
        num_threads=max(1, run.num_threads),
        device_id=run.device_id if run.device == "gpu" else None,
        seed=run.seed,
        py_num_workers=max(1, run.py_workers),
        py_start_method="spawn",
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
        feed: per-sample source (a picklable :class:`~solo_diversity.data.dali.feed.IndexFeed`
            built with ``views=view_specs(specs)``: it returns one :func:`view_params` row per
            view after FEED_OUTPUTS).
        specs: resolved augmentations (large crops first in the output).
        mean: default per-channel means.
        std: default per-channel standard deviations.
        run: batch size, threads, feed processes, device and seed.

    Raises:
        UserError: DALI missing or an unknown ``device``.

    """
    dali = dali_module()
    views = view_specs(specs)

    def graph() -> tuple[Any, ...]:
        images, position, label, skipped, *params = _feed_and_decode(dali, feed, run, len(views))
        # (no zip: DALI's autograph rewrites it, without ``strict``)
        return (
            *[
                _view(dali, images, params[k], s, mean, std, run.device)
                for k, s in enumerate(views)
            ],
            position,
            label,
            skipped,
        )

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
            image = fn.random_resized_crop(
                images,
                device=device,
                size=[size, size],
                random_area=[0.08, 1.0],
                random_aspect_ratio=list(RRC_RATIO),
                interp_type=types.INTERP_CUBIC,
                antialias=True,
            )
            mirror = fn.random.coin_flip(probability=0.5)
        else:
            image = fn.resize(
                images,
                device=device,
                resize_shorter=round(size / crop_fraction),
                interp_type=types.INTERP_LINEAR,
                antialias=True,
            )
            image = fn.crop(image, device=device, crop=[size, size])
            mirror = 0
        return _normalize(fn, types, image, mean, std, device, mirror), position, label, skipped

    return _build(dali, graph, run)
