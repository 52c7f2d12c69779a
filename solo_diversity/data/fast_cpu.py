# SPDX-License-Identifier: MIT
"""The fast CPU augmentation path: decode once, crop in uint8 with SIMD, colour ops in uint8.

This module owns ``data.augment_backend=fast``: :class:`FastMultiView`, a drop-in for
:class:`~solo_diversity.data.MultiViewTransform` that draws the same augmentation distribution
(solo-learn's schema with torchvision's parameter laws: RRC box law, jitter factors
U[max(0, 1 - s), 1 + s], hue U[-h, h], random op order, each block with its probability) but does
the work where it is cheapest:

- the image is decoded once (PIL, as the reference path, so unreadable images are skipped and
  counted identically) and viewed as one uint8 tensor;
- each RandomResizedCrop is torch's antialiased bicubic uint8 kernel (SIMD, ~3x PIL's);
- colour jitter, grayscale, blur, solarization and flip run on the 8-bit crop with OpenCV's SIMD
  kernels (the hue rotation, 60% of the reference time, costs ~10x less than PIL's HSV round
  trip). The 8-bit arithmetic is PIL's: the reference path on PIL images is 8-bit too. Without
  OpenCV the same ops run as float tensor ops (:mod:`~solo_diversity.data.color_batch`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as tvf

from solo_diversity.data import color_batch as cb
from solo_diversity.data.augment import (
    BLUR_SIGMA,
    SOLARIZE_THRESHOLD,
    AugmentationSpec,
    blur_kernel_size,
    crop_counts,
)
from solo_diversity.errors import UserError

AUGMENT_BACKENDS = ("fast", "torchvision")
#: RandomResizedCrop aspect-ratio range (torchvision's and solo-learn's default).
RRC_RATIO = (3.0 / 4.0, 4.0 / 3.0)


def ordered_specs(specs: Sequence[AugmentationSpec]) -> tuple[AugmentationSpec, ...]:
    """Specs in view order: those of the first spec's crop size (large) first, then the rest."""
    large = specs[0].crop_size
    return tuple(
        [s for s in specs if s.crop_size == large] + [s for s in specs if s.crop_size != large]
    )


def rrc_box(
    height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float] = RRC_RATIO
) -> tuple[int, int, int, int]:
    """A RandomResizedCrop box ``(top, left, h, w)`` drawn with torch's RNG (torchvision's law).

    Up to 10 tries of area ~ U(scale) * H * W and log-aspect ~ U(log ratio); a try whose box fits
    is placed uniformly. After 10 misses: the largest centred box with aspect clamped to ``ratio``.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        draws = torch.rand(2).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * draws[0])
        aspect = math.exp(log_lo + (log_hi - log_lo) * draws[1])
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,)))
            left = int(torch.randint(0, width - w + 1, (1,)))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def image_to_uint8(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> uint8 tensor (3, H, W), channels-last in memory (as SIMD resize wants)."""
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)


def _cv2() -> Any:
    """OpenCV, single-threaded in this process (DataLoader workers are the parallelism), or None."""
    try:
        import cv2
    except ImportError:
        return None
    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)
    return cv2


def _factor(strength: float) -> float:
    """A jitter factor ~ U[max(0, 1 - s), 1 + s] (torchvision's ColorJitter law)."""
    lo = max(0.0, 1.0 - strength)
    return lo + (1.0 + strength - lo) * float(torch.rand(1))


class _Uint8Ops:
    """Colour ops on one HWC uint8 RGB image with OpenCV (saturating 8-bit arithmetic, as PIL)."""

    def __init__(self, cv2: Any) -> None:
        self.cv2 = cv2

    def grey(self, x: np.ndarray) -> np.ndarray:
        return self.cv2.cvtColor(x, self.cv2.COLOR_RGB2GRAY)

    def brightness(self, x: np.ndarray, f: float) -> np.ndarray:
        return self.cv2.convertScaleAbs(x, alpha=f)

    def contrast(self, x: np.ndarray, f: float) -> np.ndarray:
        mean = float(self.grey(x).mean())
        return self.cv2.addWeighted(x, f, x, 0.0, (1.0 - f) * mean)

    def saturation(self, x: np.ndarray, f: float) -> np.ndarray:
        grey3 = self.cv2.cvtColor(self.grey(x), self.cv2.COLOR_GRAY2RGB)
        return self.cv2.addWeighted(x, f, grey3, 1.0 - f, 0.0)

    def hue(self, x: np.ndarray, turns: float) -> np.ndarray:
        # 8-bit hue in [0, 255] (OpenCV's *_FULL), shifted with wrap-around, as PIL's HSV mode.
        hsv = self.cv2.cvtColor(x, self.cv2.COLOR_RGB2HSV_FULL)
        hsv[..., 0] += np.uint8(int(round(turns * 255)) % 256)
        return self.cv2.cvtColor(hsv, self.cv2.COLOR_HSV2RGB_FULL)

    def grayscale(self, x: np.ndarray) -> np.ndarray:
        return self.cv2.cvtColor(self.grey(x), self.cv2.COLOR_GRAY2RGB)

    def blur(self, x: np.ndarray, sigma: float, kernel: int) -> np.ndarray:
        return self.cv2.GaussianBlur(
            x, (kernel, kernel), sigma, sigmaY=sigma, borderType=self.cv2.BORDER_REFLECT_101
        )


class _FloatOps:
    """The same ops on a (1, 3, H, W) float tensor in [0, 1] (fallback without OpenCV)."""

    @staticmethod
    def _f(value: float) -> torch.Tensor:
        return torch.tensor([value])

    def brightness(self, x: torch.Tensor, f: float) -> torch.Tensor:
        return cb.adjust_brightness(x, self._f(f))

    def contrast(self, x: torch.Tensor, f: float) -> torch.Tensor:
        return cb.adjust_contrast(x, self._f(f))

    def saturation(self, x: torch.Tensor, f: float) -> torch.Tensor:
        return cb.adjust_saturation(x, self._f(f))

    def hue(self, x: torch.Tensor, turns: float) -> torch.Tensor:
        return cb.rgb_hue_shift(x, self._f(turns))

    def grayscale(self, x: torch.Tensor) -> torch.Tensor:
        return cb.grey(x).expand(-1, 3, -1, -1).contiguous()

    def blur(self, x: torch.Tensor, sigma: float, kernel: int) -> torch.Tensor:
        return cb.gaussian_blur(x, self._f(sigma), kernel)


class FastView:
    """One view: RRC -> jitter -> grayscale -> blur -> solarize -> equalize -> flip -> normalise.

    Args:
        spec: the view's augmentation spec.
        mean: 3 per-channel means (used when the spec has none).
        std: 3 per-channel standard deviations (likewise).

    """

    def __init__(self, spec: AugmentationSpec, mean: Sequence[float], std: Sequence[float]) -> None:
        self.spec = spec
        mean = spec.mean if spec.mean is not None else mean
        std = spec.std if spec.std is not None else std
        self.scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(3, 1, 1)
        self.offset = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)]).view(3, 1, 1)
        self.kernel_size = blur_kernel_size(spec.crop_size)
        cj = spec.color_jitter
        self._jitter: list[tuple[str, Callable[[], float]]] = [
            (name, draw)
            for name, strength, draw in (
                ("brightness", cj.brightness, lambda: _factor(cj.brightness)),
                ("contrast", cj.contrast, lambda: _factor(cj.contrast)),
                ("saturation", cj.saturation, lambda: _factor(cj.saturation)),
                ("hue", cj.hue, lambda: (2.0 * float(torch.rand(1)) - 1.0) * cj.hue),
            )
            if strength > 0
        ]

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """(3, H, W) uint8 -> (3, S, S) uint8 (short side S, aspect kept, when rrc is disabled)."""
        spec, bicubic = self.spec, tvf.InterpolationMode.BICUBIC
        if not spec.rrc.enabled:
            return tvf.resize(x, spec.crop_size, interpolation=bicubic, antialias=True)
        scale = (spec.rrc.crop_min_scale, spec.rrc.crop_max_scale)
        top, left, h, w = rrc_box(x.shape[1], x.shape[2], scale)
        size = [spec.crop_size, spec.crop_size]
        return tvf.resized_crop(x, top, left, h, w, size, interpolation=bicubic, antialias=True)

    def _pixel_ops(self, img: Any, ops: Any) -> Any:
        spec = self.spec
        if self._jitter and float(torch.rand(1)) < spec.color_jitter.prob:
            factors = [
                (name, draw()) for name, draw in self._jitter
            ]  # drawn in torchvision's order
            for k in torch.randperm(len(factors)).tolist():
                name, value = factors[k]
                img = getattr(ops, name)(img, value)
        if spec.grayscale_prob > 0 and float(torch.rand(1)) < spec.grayscale_prob:
            img = ops.grayscale(img)
        if spec.gaussian_blur_prob > 0 and float(torch.rand(1)) < spec.gaussian_blur_prob:
            sigma = BLUR_SIGMA[0] + (BLUR_SIGMA[1] - BLUR_SIGMA[0]) * float(torch.rand(1))
            img = ops.blur(img, sigma, self.kernel_size)
        return img

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: the decoded image, (3, H, W) uint8. Returns: (3, S, S) float32, normalised."""
        spec = self.spec
        view = self.crop(x)
        cv2 = _cv2()
        if cv2 is not None:
            pixels = self._pixel_ops(
                np.ascontiguousarray(view.permute(1, 2, 0).numpy()), _Uint8Ops(cv2)
            )
            out = torch.from_numpy(pixels).permute(2, 0, 1)
        else:
            as_float = self._pixel_ops(view.unsqueeze(0).float().div_(255.0), _FloatOps())
            out = as_float.mul_(255.0).round_().to(torch.uint8).squeeze(0)
        if spec.solarization_prob > 0 and float(torch.rand(1)) < spec.solarization_prob:
            out = torch.where(out >= int(SOLARIZE_THRESHOLD), 255 - out, out)
        if spec.equalization_prob > 0 and float(torch.rand(1)) < spec.equalization_prob:
            out = tvf.equalize(out.contiguous())
        if spec.horizontal_flip_prob > 0 and float(torch.rand(1)) < spec.horizontal_flip_prob:
            out = out.flip(-1)
        return torch.addcmul(self.offset, out.float(), self.scale)


class FastMultiView:
    """Drop-in for :class:`~solo_diversity.data.MultiViewTransform` on the fast path.

    Args:
        specs: the resolved augmentations; views come out large crops first.
        mean: default per-channel means.
        std: default per-channel standard deviations.

    """

    def __init__(
        self, specs: Sequence[AugmentationSpec], mean: Sequence[float], std: Sequence[float]
    ) -> None:
        if not specs:
            raise UserError("augmentations must hold at least one entry")
        self.specs = ordered_specs(specs)
        self.num_large_crops, self.num_small_crops = crop_counts(specs)
        self._views = [(FastView(s, mean, std), s.num_crops) for s in self.specs]

    @property
    def num_crops(self) -> int:
        """Total number of views per image."""
        return self.num_large_crops + self.num_small_crops

    def __call__(self, img: Image.Image) -> list[torch.Tensor]:
        """Args: img: an RGB PIL image. Returns: ``num_crops`` float tensors (3, S_k, S_k)."""
        x = image_to_uint8(img)
        return [view(x) for view, n in self._views for _ in range(n)]


def check_backend(backend: str) -> str:
    """Validate ``data.augment_backend`` (``fast`` or ``torchvision``)."""
    if backend not in AUGMENT_BACKENDS:
        raise UserError(
            f"unknown data.augment_backend {backend!r}; valid: {', '.join(AUGMENT_BACKENDS)}"
        )
    return backend
