# SPDX-License-Identifier: MIT
"""The batched small-image path (``data.augment_backend=batch``): augment whole batches at once.

At 32-64 px a view costs microseconds of arithmetic but tens of microseconds of per-image Python
(one PIL or OpenCV call per operation per view). This module owns :class:`BatchAugment`, which
takes a whole batch of uint8 images ``(B, H, W, 3)`` with one seed per sample and applies
solo-learn's view pipeline to every sample in a handful of tensor operations, on whatever device
the batch lives on (DataLoader workers on the CPU, or the GPU after transfer):

- RandomResizedCrop with torchvision's box law and Pillow's antialiased bicubic pixels
  (:mod:`~solo_diversity.data.batch_crop`), or ``Resize(crop_size)`` when rrc is disabled;
- ColorJitter with probability p, factors U[max(0, 1 - s), 1 + s] and hue U[-h, h], in a uniformly
  random order per sample (torchvision's laws; the ops of :mod:`~solo_diversity.data.color_batch`);
- RandomGrayscale, Gaussian blur (sigma ~ U[0.1, 2.0] px, a true Gaussian of radius 3 sigma: the
  variance of solo-learn's PIL blur), solarization (8-bit levels >= 128 inverted), equalization
  (per channel, on the 8-bit image), horizontal flip, each with its probability, in solo-learn's
  order; then normalisation.

Every random number of a sample comes from :func:`~solo_diversity.data.batch_crop.counter_uniforms`
of its seed and view, so its views are the same whichever batch, worker or device makes them.
Pixels are rounded to 8 bits after the crop and after the colour ops, as Pillow's 8-bit images are;
in between the arithmetic is float (within about one level of Pillow's per-op rounding).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torchvision.transforms.v2 import functional as tvf

from solo_diversity.data import color_batch as cb
from solo_diversity.data.augment import (
    BLUR_SIGMA,
    SOLARIZE_THRESHOLD,
    AugmentationSpec,
    crop_counts,
    jitter_factor,
    jitter_ops,
    ordered_specs,
    view_stats,
)
from solo_diversity.data.batch_crop import RRC_DRAWS, counter_uniforms, crop_resize, rrc_boxes
from solo_diversity.data.batch_crop import blur as blur_batch
from solo_diversity.errors import UserError

_JITTER_OPS = {
    "brightness": cb.adjust_brightness,
    "contrast": cb.adjust_contrast,
    "saturation": cb.adjust_saturation,
    "hue": cb.rgb_hue_shift,
}


def _where(mask: np.ndarray, device: torch.device) -> torch.Tensor | None:
    """Indices of the True samples as a tensor on ``device``, or None when there are none."""
    picked = np.flatnonzero(mask)
    return torch.from_numpy(picked).to(device) if picked.size else None


class BatchView:
    """One spec's view of every sample of a batch.

    Args:
        spec: the view's augmentation spec.
        mean: 3 per-channel means (used when the spec has none).
        std: 3 per-channel standard deviations (likewise).

    """

    def __init__(self, spec: AugmentationSpec, mean: Sequence[float], std: Sequence[float]) -> None:
        self.spec = spec
        mean, std = view_stats(spec, mean, std)
        # (v / 255 - mean) / std as v * scale - shift, per channel.
        self.scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(1, 3, 1, 1)
        self.shift = torch.tensor([m / s for m, s in zip(mean, std, strict=True)]).view(1, 3, 1, 1)
        self.jitter = jitter_ops(spec.color_jitter)
        # Uniforms per sample: the crop's, then the jitter gate, a factor and an order key per
        # jitter op, then grayscale, blur gate, blur sigma, solarize, equalize, flip.
        self.num_draws = RRC_DRAWS + 1 + 2 * len(self.jitter) + 6

    def _crop(self, x: torch.Tensor, u: np.ndarray, sizes: np.ndarray) -> torch.Tensor:
        spec, size = self.spec, self.spec.crop_size
        if spec.rrc.enabled:
            scale = (spec.rrc.crop_min_scale, spec.rrc.crop_max_scale)
            boxes = rrc_boxes(u[:, :RRC_DRAWS], sizes[:, 0], sizes[:, 1], scale)
            return crop_resize(x, torch.from_numpy(boxes), size, size)
        if len(np.unique(sizes, axis=0)) > 1:
            raise UserError(
                "data.augment_backend=batch with rrc disabled needs images of one size (Resize "
                "keeps the aspect ratio, so views of other sizes cannot share a batch)"
            )
        height, width = (int(v) for v in sizes[0])
        out_h, out_w = (
            (int(size * height / width), size)
            if width <= height
            else (size, int(size * width / height))
        )
        boxes = np.zeros((len(sizes), 4), dtype=np.int64)
        boxes[:, 2], boxes[:, 3] = height, width
        return crop_resize(x, torch.from_numpy(boxes), out_h, out_w)

    def _jitter(self, x: torch.Tensor, u: np.ndarray) -> None:
        """Colour jitter in place on x (B, 3, S, S) in [0, 1].

        The jittered samples are gathered once; before each position of the op order they are
        re-sorted by the op they take there, so that every op runs on one contiguous slice (5
        gathers in all, where indexing each (position, op) pair would take 16 gathers and 16
        scatters).
        """
        n = len(self.jitter)
        chosen = np.flatnonzero(u[:, 0] < self.spec.color_jitter.prob)
        if chosen.size == 0:
            return
        factors = np.empty((len(chosen), n))
        for k, (name, strength) in enumerate(self.jitter):
            factors[:, k] = jitter_factor(name, strength, u[chosen, 1 + k])
        order = np.argsort(u[chosen, 1 + n : 1 + 2 * n], axis=1)  # iid keys: a uniform permutation
        part = x[torch.from_numpy(chosen).to(x.device)]
        for position in range(n):
            sort = np.argsort(order[:, position], kind="stable")
            chosen, factors, order = chosen[sort], factors[sort], order[sort]
            part = part[torch.from_numpy(sort).to(x.device)]
            bounds = np.searchsorted(order[:, position], np.arange(n + 1))
            for k, (name, _) in enumerate(self.jitter):
                lo, hi = int(bounds[k]), int(bounds[k + 1])
                if lo < hi:
                    f = torch.from_numpy(factors[lo:hi, k]).to(part)
                    part[lo:hi] = _JITTER_OPS[name](part[lo:hi], f)
        x[torch.from_numpy(chosen).to(x.device)] = part

    def __call__(
        self,
        x: torch.Tensor,
        seeds: np.ndarray,
        stream: int,
        sizes: np.ndarray,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Args: x (B, 3, H, W) float in 8-bit units; seeds (B,); stream: the view's number;
        sizes (B, 2) each image's (height, width); out: optional (B, 3, S, S) float32 target.

        Returns: (B, 3, S, S) float32, normalised (``out`` when given).
        """
        spec, target = self.spec, out
        u = counter_uniforms(seeds, stream, self.num_draws)
        out = self._crop(x, u, sizes).round_().clamp_(0.0, 255.0).div_(255.0)
        u = u[:, RRC_DRAWS:]
        if self.jitter:
            self._jitter(out, u)
        gray, blur, sigma, solarize, equalize, flip = u[:, -6:].T
        pick = _where(gray < spec.grayscale_prob, out.device)
        if pick is not None:
            out[pick] = cb.grey(out[pick]).expand(-1, 3, -1, -1)
        pick = _where(blur < spec.gaussian_blur_prob, out.device)
        if pick is not None:
            sigmas = BLUR_SIGMA[0] + (BLUR_SIGMA[1] - BLUR_SIGMA[0]) * sigma[pick.cpu().numpy()]
            # Radius 3 sigma (the tail beyond holds 0.27% of the mass: < 1 level); reflection
            # padding needs the radius below the side.
            radius = min(math.ceil(3.0 * float(sigmas.max())), min(out.shape[-2:]) - 1)
            out[pick] = blur_batch(out[pick], torch.from_numpy(sigmas), radius)
        out = out.mul_(255.0).round_().clamp_(0.0, 255.0)
        pick = _where(solarize < spec.solarization_prob, out.device)
        if pick is not None:
            out[pick] = cb.solarize(out[pick], SOLARIZE_THRESHOLD, 255.0)
        pick = _where(equalize < spec.equalization_prob, out.device)
        if pick is not None:
            out[pick] = tvf.equalize(out[pick].to(torch.uint8)).to(out.dtype)
        pick = _where(flip < spec.horizontal_flip_prob, out.device)
        if pick is not None:
            out[pick] = out[pick].flip(-1)
        scaled = torch.mul(out, self.scale.to(out.device), out=out if target is None else target)
        return scaled.sub_(self.shift.to(out.device))


class BatchAugment:
    """All views of a batch, large crops first: the batched counterpart of MultiViewTransform.

    Args:
        specs: the resolved augmentations.
        mean: default per-channel means.
        std: default per-channel standard deviations.

    """

    #: Datasets hand this transform whole batches (see :mod:`~solo_diversity.data.pixel_batches`).
    batched = True

    def __init__(
        self, specs: Sequence[AugmentationSpec], mean: Sequence[float], std: Sequence[float]
    ) -> None:
        if not specs:
            raise UserError("augmentations must hold at least one entry")
        self.specs = ordered_specs(specs)
        self.num_large_crops, self.num_small_crops = crop_counts(specs)
        self._views = [BatchView(s, mean, std) for s in self.specs for _ in range(s.num_crops)]

    @property
    def num_crops(self) -> int:
        """Total number of views per image."""
        return self.num_large_crops + self.num_small_crops

    def __call__(
        self,
        pixels: torch.Tensor,
        seeds: torch.Tensor | np.ndarray,
        sizes: torch.Tensor | np.ndarray | None = None,
        out: Sequence[torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """The views of a batch.

        Args:
            pixels: (B, H, W, 3) uint8 images (on any device); an image smaller than H x W sits
                in the top-left corner, its size given by ``sizes``.
            seeds: (B,) non-negative int64 sample seeds.
            sizes: (B, 2) each image's (height, width); None when all are H x W.
            out: optional tensors to write the views into, (B, 3, S_k, S_k) float32 each.

        Returns:
            ``num_crops`` float32 tensors (B, 3, S_k, S_k), normalised, on the pixels' device.

        """
        batch, height, width, _ = pixels.shape
        seeds = np.asarray(seeds.cpu() if isinstance(seeds, torch.Tensor) else seeds)
        if sizes is None:
            sizes = np.tile(np.array([[height, width]]), (batch, 1))
        sizes = np.asarray(sizes.cpu() if isinstance(sizes, torch.Tensor) else sizes)
        x = pixels.permute(0, 3, 1, 2).to(torch.float32)
        targets = list(out) if out is not None else [None] * len(self._views)
        return [
            view(x, seeds, k, sizes, target)
            for k, (view, target) in enumerate(zip(self._views, targets, strict=True))
        ]

    def __repr__(self) -> str:
        return f"BatchAugment({len(self._views)} views: {[v.spec for v in self._views]})"
