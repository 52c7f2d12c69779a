# SPDX-License-Identifier: MIT
"""The fast CPU augmentation path: decode once, crop in uint8 with SIMD, colour ops in uint8.

This module owns ``data.augment_backend=fast``: :class:`FastMultiView`, a drop-in for
:class:`~solo_diversity.data.MultiViewTransform` that draws the same augmentation distribution
(solo-learn's schema with torchvision's parameter laws: RRC box law, jitter factors
U[max(0, 1 - s), 1 + s], hue U[-h, h], random op order, each block with its probability) but does
the work where it is cheapest:

- the image is decoded once (PIL, as the reference path, so unreadable images are skipped and
  counted identically) and read as one HWC uint8 array over PIL's packed export (not copied again);
- each RandomResizedCrop is torch's antialiased bicubic uint8 kernel (SIMD, ~3x PIL's, the same
  pixels as ``tvf.resized_crop``), fed the box channels-last so that it writes the HWC crop the
  colour ops want without a transpose copy;
- colour jitter, grayscale and blur run on the 8-bit crop with OpenCV's SIMD kernels (the hue
  rotation, 60% of the reference time, costs ~10x less than PIL's HSV round trip). The 8-bit
  arithmetic is PIL's up to one level (it rounds where PIL truncates). Without OpenCV the same ops
  run as float tensor ops (:mod:`~solo_diversity.data.batch.color`, the blur as
  :func:`~solo_diversity.data.batch.crop.blur`);
- solarization, flip and normalisation end in one table look-up per channel from uint8 into the
  float (3, S, S) output;
- each view's random numbers come from two torch draws (box, then everything else) instead of
  one per decision: the same laws from the same (seedable) generator, less per-call overhead.
  In training that generator is seeded per sample from (seed, pass, position) by
  :func:`~solo_diversity.data.datasets.seeded_draws`, so the views do not depend on the worker.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as nnf
from PIL import Image
from torchvision.transforms.v2 import functional as tvf

from solo_diversity.data.augment import (
    BLUR_SIGMA,
    SOLARIZE_THRESHOLD,
    AugmentationSpec,
    blur_kernel_size,
    crop_counts,
    jitter_factor,
    jitter_ops,
    ordered_specs,
    view_stats,
)
from solo_diversity.data.batch import color as cb
from solo_diversity.data.batch.crop import blur as blur_batch
from solo_diversity.data.decode import decode_hwc
from solo_diversity.errors import UserError

AUGMENT_BACKENDS = ("fast", "torchvision", "batch")
#: RandomResizedCrop aspect-ratio range (torchvision's and solo-learn's default).
RRC_RATIO = (3.0 / 4.0, 4.0 / 3.0)
_RRC_TRIES = 10
_LEVELS = np.arange(256)
#: Solarization as a table on 8-bit values (invert at or above the threshold).
_SOLARIZE = np.where(_LEVELS >= SOLARIZE_THRESHOLD, 255 - _LEVELS, _LEVELS).astype(np.uint8)


def _below(u: float, n: int) -> int:
    """A uniform integer in [0, n) from a uniform float u in [0, 1)."""
    return min(int(u * n), n - 1)


def rrc_box(
    height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float] = RRC_RATIO
) -> tuple[int, int, int, int]:
    """A RandomResizedCrop box ``(top, left, h, w)`` drawn with torch's RNG (torchvision's law).

    Up to 10 tries of area ~ U(scale) * H * W and log-aspect ~ U(log ratio); a try whose box fits
    is placed uniformly. After 10 misses: the largest centred box with aspect clamped to ``ratio``.
    All uniforms come from one float64 draw (one torch call instead of 3 to 12).
    """
    draws = torch.rand(2 * _RRC_TRIES + 2, dtype=torch.float64).tolist()
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for k in range(_RRC_TRIES):
        target = area * (scale[0] + (scale[1] - scale[0]) * draws[2 * k])
        aspect = math.exp(log_lo + (log_hi - log_lo) * draws[2 * k + 1])
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = _below(draws[-2], height - h + 1)
            return top, _below(draws[-1], width - w + 1), h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def image_to_hwc(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (H, W, 3) uint8 tensor over PIL's packed bytes (read-only, never written).

    ``np.asarray`` shares the bytes of PIL's export where ``np.array`` copies them again; torch
    warns that the buffer is read-only, which is fine since every later step allocates its output.
    """
    if img.mode != "RGB":
        img = img.convert("RGB")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.asarray(img))


def resize_hwc(src: torch.Tensor, height: int, width: int) -> np.ndarray:
    """(h, w, 3) uint8 (any strides) -> (height, width, 3) uint8, torch's antialiased bicubic.

    The pixels of ``tvf.resize(..., BICUBIC, antialias=True)``. For a 1xCxHxW input torch cannot
    tell channels-last from contiguous and allocates an NCHW output (pytorch#68430), whose HWC
    copy then costs about as much as the resize; an unambiguous batch stride makes the SIMD kernel
    write channels-last, i.e. the HWC array the colour ops want.
    """
    if tuple(src.shape[:2]) == (height, width):
        return src.numpy().copy()  # the input aliases PIL's immutable bytes
    # A strided box of the whole image takes the kernel's slow path: a contiguous copy is cheaper.
    src = src.contiguous()
    nchw = src.permute(2, 0, 1).unsqueeze(0)
    nchw = nchw.as_strided(nchw.shape, (src.numel() + 1, *nchw.stride()[1:]))
    out = nnf.interpolate(
        nchw, size=(height, width), mode="bicubic", align_corners=False, antialias=True
    )
    return np.ascontiguousarray(out[0].permute(1, 2, 0).numpy())  # a no-op when channels-last


def _short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``Resize(size)``'s output (h, w): short side ``size``, long side scaled and truncated."""
    if width <= height:
        return int(size * height / width), size
    return size, int(size * width / height)


def sigma_kernel(sigma: float) -> int:
    """Taps of a Gaussian of ``sigma`` px truncated at 3 sigma: 2 ceil(3 sigma) + 1 (13 at 2 px).

    The mass beyond 3 sigma is 0.27%, so a pixel moves by at most 0.7 of a level against the
    untruncated Gaussian (solo-learn's PIL blur has no fixed kernel: it matches the variance),
    while a 23-tap kernel at sigma = 0.5 spends 80% of its work on zero weights.
    """
    return 2 * math.ceil(3.0 * sigma) + 1


def _cv2() -> Any:
    """OpenCV, single-threaded in this process (DataLoader workers are the parallelism), or None."""
    try:
        import cv2
    except ImportError:
        return None
    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)
    return cv2


@functools.lru_cache(maxsize=8)
def _hue_plane_mask(shape: tuple[int, ...]) -> np.ndarray:
    """Ones on the hue channel of an HSV array: a contiguous add beats ``hsv[..., 0] += k`` 3x."""
    mask = np.zeros(shape, np.uint8)
    mask[..., 0] = 1
    return mask


class _Uint8Ops:
    """Colour ops on one HWC uint8 RGB image with OpenCV (saturating 8-bit arithmetic, as PIL).

    Grayscale returns one (H, W) channel: the final table look-up writes it to all three.
    """

    def __init__(self, cv2: Any) -> None:
        self.cv2 = cv2

    def grey(self, x: np.ndarray) -> np.ndarray:
        return self.cv2.cvtColor(x, self.cv2.COLOR_RGB2GRAY)

    def brightness(self, x: np.ndarray, f: float) -> np.ndarray:
        return self.cv2.convertScaleAbs(x, alpha=f)

    def contrast(self, x: np.ndarray, f: float) -> np.ndarray:
        # The mean grey is the luma of the channel means (no grey image needed).
        mean = float(np.dot(self.cv2.mean(x)[:3], cb.LUMA))
        return self.cv2.addWeighted(x, f, x, 0.0, (1.0 - f) * mean)

    def saturation(self, x: np.ndarray, f: float) -> np.ndarray:
        # f x + (1 - f) grey(x) is one 3x3 colour matrix: a single pass instead of three.
        matrix = f * np.eye(3) + (1.0 - f) * np.array([cb.LUMA] * 3)
        return self.cv2.transform(x, matrix)

    def hue(self, x: np.ndarray, turns: float) -> np.ndarray:
        # 8-bit hue in [0, 255] (OpenCV's *_FULL), shifted with wrap-around, as PIL's HSV mode.
        hsv = self.cv2.cvtColor(x, self.cv2.COLOR_RGB2HSV_FULL)
        shift = np.multiply(_hue_plane_mask(hsv.shape), np.uint8(round(turns * 255) % 256))
        np.add(hsv, shift, out=hsv)
        return self.cv2.cvtColor(hsv, self.cv2.COLOR_HSV2RGB_FULL, dst=shift)

    def grayscale(self, x: np.ndarray) -> np.ndarray:
        return self.grey(x)

    def blur(self, x: np.ndarray, sigma: float, kernel: int) -> np.ndarray:
        kernel = min(kernel, sigma_kernel(sigma))
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
        return blur_batch(x, self._f(sigma), min(kernel, sigma_kernel(sigma)) // 2)


def _equalize(x: np.ndarray) -> np.ndarray:
    """Per-channel histogram equalisation of an HWC (or HW) uint8 array (torchvision's, as PIL)."""
    chw = torch.from_numpy(np.moveaxis(x.reshape(*x.shape[:2], -1), -1, 0).copy())
    return np.ascontiguousarray(tvf.equalize(chw).permute(1, 2, 0).numpy().reshape(x.shape))


def _normalise(
    pixels: np.ndarray, tables: np.ndarray, cv2: Any, out: torch.Tensor | None = None
) -> torch.Tensor:
    """HWC (or grey HW) uint8 -> (3, H, W) float32 by one table look-up per channel.

    ``out``: a contiguous (3, H, W) float32 tensor to write into (e.g. a row of the batch).
    """
    if out is None:
        out = torch.empty(3, *pixels.shape[:2])
    dst = out.numpy()
    if pixels.ndim == 2:
        planes: Sequence[np.ndarray] = (pixels,) * 3
    else:
        planes = cv2.split(pixels) if cv2 is not None else [pixels[..., c] for c in range(3)]
    for plane, table, plane_out in zip(planes, tables, dst, strict=True):
        if cv2 is not None:
            cv2.LUT(plane, table, dst=plane_out)
        else:
            np.take(table, plane, out=plane_out)
    return out


class FastView:
    """One view: RRC -> jitter -> grayscale -> blur -> solarize -> equalize -> flip -> normalise.

    Args:
        spec: the view's augmentation spec.
        mean: 3 per-channel means (used when the spec has none).
        std: 3 per-channel standard deviations (likewise).

    """

    def __init__(self, spec: AugmentationSpec, mean: Sequence[float], std: Sequence[float]) -> None:
        self.spec = spec
        mean, std = view_stats(spec, mean, std)
        # Normalisation as one float table per channel: value v -> (v / 255 - mean) / std.
        self.tables = np.stack(
            [(_LEVELS / 255.0 - m) / s for m, s in zip(mean, std, strict=True)]
        ).astype(np.float32)
        self.solarized_tables = np.ascontiguousarray(self.tables[:, _SOLARIZE])
        self.kernel_size = blur_kernel_size(spec.crop_size)
        self._jitter = jitter_ops(spec.color_jitter)
        # Uniforms per view: jitter gate, one factor and one order key per jitter op, then
        # grayscale, blur gate, blur sigma, solarize, equalize, flip.
        self._num_draws = 1 + 2 * len(self._jitter) + 6

    def crop(self, x: torch.Tensor) -> np.ndarray:
        """(H, W, 3) uint8 -> (S, S, 3) uint8 (short side S, aspect kept, when rrc is disabled)."""
        spec = self.spec
        if not spec.rrc.enabled:
            return resize_hwc(x, *_short_side_size(x.shape[0], x.shape[1], spec.crop_size))
        scale = (spec.rrc.crop_min_scale, spec.rrc.crop_max_scale)
        top, left, h, w = rrc_box(x.shape[0], x.shape[1], scale)
        return resize_hwc(x[top : top + h, left : left + w], spec.crop_size, spec.crop_size)

    def _jitter_params(self, u: list[float]) -> list[tuple[str, float]]:
        """The jitter ops with their factors (torchvision's laws), in a uniformly random order."""
        n = len(self._jitter)
        params = []
        for (name, strength), v in zip(self._jitter, u[:n], strict=True):
            params.append((name, jitter_factor(name, strength, v)))
        keys = u[n : 2 * n]  # sorting iid uniforms gives a uniformly random permutation
        return [params[k] for k in sorted(range(n), key=keys.__getitem__)]

    def _pixel_ops(self, img: Any, ops: Any, u: list[float]) -> Any:
        spec, n = self.spec, 2 * len(self._jitter)
        if self._jitter and u[0] < spec.color_jitter.prob:
            for name, value in self._jitter_params(u[1 : 1 + n]):
                img = getattr(ops, name)(img, value)
        gray, blur, sigma = u[1 + n : 4 + n]
        if gray < spec.grayscale_prob:
            img = ops.grayscale(img)
        if blur < spec.gaussian_blur_prob:
            sigma = BLUR_SIGMA[0] + (BLUR_SIGMA[1] - BLUR_SIGMA[0]) * sigma
            img = ops.blur(img, sigma, self.kernel_size)
        return img

    def __call__(
        self, x: torch.Tensor, cv2: Any = None, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args: x: the decoded image, (H, W, 3) uint8; cv2: OpenCV or None (float fallback);
        out: optional (3, S, S) float32 tensor to write the view into.

        Returns: (3, S, S) float32, normalised (``out`` when given).
        """
        spec = self.spec
        pixels = self.crop(x)
        u = torch.rand(self._num_draws, dtype=torch.float64).tolist()
        if cv2 is not None:
            pixels = self._pixel_ops(pixels, _Uint8Ops(cv2), u)
        else:
            as_float = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
            as_float = self._pixel_ops(as_float, _FloatOps(), u)
            as_uint8 = as_float.mul_(255.0).round_().to(torch.uint8)[0].permute(1, 2, 0)
            pixels = np.ascontiguousarray(as_uint8.numpy())
        probs = (spec.solarization_prob, spec.equalization_prob, spec.horizontal_flip_prob)
        solarize, equalize, flip = (v < p for v, p in zip(u[-3:], probs, strict=True))
        tables = self.solarized_tables if solarize else self.tables
        if equalize:  # solarization comes first, so it cannot stay folded into the tables
            pixels, tables = _equalize(_SOLARIZE[pixels] if solarize else pixels), self.tables
        if flip:
            pixels = cv2.flip(pixels, 1) if cv2 is not None else pixels[:, ::-1]
        return _normalise(pixels, tables, cv2, out)


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
        return self._views_of(image_to_hwc(img))

    def from_bytes(self, data: bytes) -> list[torch.Tensor]:
        """The views of encoded bytes, decoded by :func:`~solo_diversity.data.decode.decode_hwc`.

        Datasets call this instead of decoding to PIL first (it skips the same images).
        """
        return self._views_of(decode_hwc(data))

    def from_bytes_into(self, data: bytes, outs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """:meth:`from_bytes`, writing view k into ``outs[k]`` (rows of the batch tensors)."""
        return self._views_of(decode_hwc(data), outs)

    def from_hwc(
        self, x: torch.Tensor, outs: Sequence[torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        """The views of decoded pixels (H, W, 3) uint8 (an in-memory subset's), into ``outs``."""
        return self._views_of(x, outs)

    def _views_of(
        self, x: torch.Tensor, outs: Sequence[torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        cv2 = _cv2()
        views = [view for view, n in self._views for _ in range(n)]
        if outs is None:
            return [view(x, cv2) for view in views]
        return [view(x, cv2, out) for view, out in zip(views, outs, strict=True)]


def check_backend(backend: str) -> str:
    """Validate ``data.augment_backend`` (``fast``, ``torchvision`` or ``batch``)."""
    if backend not in AUGMENT_BACKENDS:
        raise UserError(
            f"unknown data.augment_backend {backend!r}; valid: {', '.join(AUGMENT_BACKENDS)}"
        )
    return backend
