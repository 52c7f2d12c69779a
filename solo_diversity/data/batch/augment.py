# SPDX-License-Identifier: MIT
"""The batched small-image path (``data.augment_backend=batch``): augment whole batches at once.

At 32-64 px a view costs microseconds of arithmetic but tens of microseconds of per-image Python
(one PIL or OpenCV call per operation per view). This module owns :class:`BatchAugment`, which
takes a whole batch of uint8 images ``(B, H, W, 3)`` with one seed per sample and applies
solo-learn's view pipeline to every sample: on the CPU (DataLoader workers) with the compiled
loops of :mod:`~solo_diversity.data.batch.kernels`, on a GPU (after transfer) as a handful of
tensor operations, both from the same draws (:class:`ViewDraws`):

- RandomResizedCrop with torchvision's box law and Pillow's antialiased bicubic pixels
  (:mod:`~solo_diversity.data.batch.crop`), or ``Resize(crop_size)`` when rrc is disabled;
- ColorJitter with probability p, factors U[max(0, 1 - s), 1 + s] and hue U[-h, h], in a uniformly
  random order per sample (torchvision's laws; the ops of :mod:`~solo_diversity.data.batch.color`);
- RandomGrayscale, Gaussian blur (sigma ~ U[0.1, 2.0] px, a true Gaussian of radius 3 sigma: the
  variance of solo-learn's PIL blur), solarization (8-bit levels >= 128 inverted), equalization
  (per channel, on the 8-bit image), horizontal flip, each with its probability, in solo-learn's
  order; then normalisation.

Every random number of a sample comes from :func:`~solo_diversity.data.batch.crop.counter_uniforms`
of its seed and view, so its views are the same whichever batch, worker or device makes them.
Pixels are rounded to 8 bits after the crop and after the colour ops, as Pillow's 8-bit images are;
in between the arithmetic is float (within about one level of Pillow's per-op rounding).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as tvf

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
from solo_diversity.data.batch import color as cb
from solo_diversity.data.batch import kernels
from solo_diversity.data.batch.crop import (
    RRC_DRAWS,
    counter_uniforms,
    crop_resize,
    gaussian_taps,
    length_weights,
    pillow_vertical_first,
    rrc_boxes,
)
from solo_diversity.data.batch.crop import blur as blur_batch
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


@dataclass
class ViewDraws:
    """Everything random about one view of every sample of a batch (one row per sample).

    Both forms of the pipeline (the compiled CPU kernels and the tensor operations) apply these
    draws, so they share one random law.

    Attributes:
        boxes: (B, 4) int64 crop boxes ``(top, left, h, w)``; out_h, out_w: the crop's output.
        jitter: (B,) bool; order: (B, n) int64 op index at each position; factors: (B, n)
            float32 each op's factor (hue: its shift in turns).
        grey, blur, solarize, equalize, flip: (B,) bool gates.
        sigma: (B,) float64 blur sigma in pixels (used where ``blur``).

    """

    boxes: np.ndarray
    out_h: int
    out_w: int
    jitter: np.ndarray
    order: np.ndarray
    factors: np.ndarray
    grey: np.ndarray
    blur: np.ndarray
    sigma: np.ndarray
    solarize: np.ndarray
    equalize: np.ndarray
    flip: np.ndarray


def blur_radius(sigmas: np.ndarray, height: int, width: int) -> int:
    """One radius for a batch's blurs: 3 sigma of its largest, below the image side.

    The tail beyond 3 sigma holds 0.27% of the mass (< 1 level); reflection needs the radius
    below the side.
    """
    return min(math.ceil(3.0 * float(sigmas.max())), min(height, width) - 1)


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
        # The compiled kernels' forms of the same constants.
        self._codes = np.array([kernels.OP_CODES[name] for name, _ in self.jitter], dtype=np.int64)
        self._scale_np, self._shift_np = self.scale.flatten().numpy(), self.shift.flatten().numpy()
        # Uniforms per sample: the crop's, then the jitter gate, a factor and an order key per
        # jitter op, then grayscale, blur gate, blur sigma, solarize, equalize, flip.
        self.num_draws = RRC_DRAWS + 1 + 2 * len(self.jitter) + 6

    def draws(self, seeds: np.ndarray, stream: int, sizes: np.ndarray) -> ViewDraws:
        """The view's draws for samples of these seeds and (height, width) sizes."""
        spec, n = self.spec, len(self.jitter)
        u = counter_uniforms(seeds, stream, self.num_draws)
        boxes, out_h, out_w = self._boxes(u, sizes)
        u = u[:, RRC_DRAWS:]
        factors = np.empty((len(u), n), dtype=np.float32)
        for k, (name, strength) in enumerate(self.jitter):
            factors[:, k] = jitter_factor(name, strength, u[:, 1 + k])
        gray, blur, sigma, solarize, equalize, flip = u[:, -6:].T
        return ViewDraws(
            boxes=boxes,
            out_h=out_h,
            out_w=out_w,
            jitter=u[:, 0] < spec.color_jitter.prob if n else np.zeros(len(u), dtype=bool),
            order=np.argsort(u[:, 1 + n : 1 + 2 * n], axis=1),  # iid keys: uniform permutation
            factors=factors,
            grey=gray < spec.grayscale_prob,
            blur=blur < spec.gaussian_blur_prob,
            sigma=BLUR_SIGMA[0] + (BLUR_SIGMA[1] - BLUR_SIGMA[0]) * sigma,
            solarize=solarize < spec.solarization_prob,
            equalize=equalize < spec.equalization_prob,
            flip=flip < spec.horizontal_flip_prob,
        )

    def _boxes(self, u: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, int, int]:
        spec, size = self.spec, self.spec.crop_size
        if spec.rrc.enabled:
            scale = (spec.rrc.crop_min_scale, spec.rrc.crop_max_scale)
            return rrc_boxes(u[:, :RRC_DRAWS], sizes[:, 0], sizes[:, 1], scale), size, size
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
        return boxes, out_h, out_w

    def compiled(
        self, pixels: torch.Tensor, d: ViewDraws, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The view by the compiled CPU kernels (:mod:`~solo_diversity.data.batch.kernels`).

        Args: pixels (B, H, W, 3) uint8 on the CPU; d: the view's draws; out: optional target.
        Returns: (B, 3, S, S) float32, normalised (``out`` when given).
        """
        batch, height, width, _ = pixels.shape
        x = torch.empty(batch, 3, d.out_h, d.out_w)
        rows, row_taps = length_weights(d.out_h, height)
        cols, col_taps = length_weights(d.out_w, width)
        vertical = pillow_vertical_first(d.boxes[:, 2], d.boxes[:, 3], d.out_h, d.out_w)
        xn = x.numpy()
        kernels.crop_resize(pixels.numpy(), d.boxes, vertical, rows, row_taps, cols, col_taps, xn)
        kernels.colour(xn, d.jitter, self._codes, d.order, d.factors, d.grey)
        picked = np.flatnonzero(d.blur)
        if picked.size:
            radius = blur_radius(d.sigma[picked], d.out_h, d.out_w)
            taps = gaussian_taps(torch.from_numpy(d.sigma[picked]), radius)
            kernels.blur(xn, picked, taps.numpy())
        if d.equalize.any():  # equalization takes the tensor form's tail (no kernel of its own)
            return self._tail(x, d, out)
        target = out if out is not None else torch.empty_like(x)
        kernels.finish(xn, d.solarize, d.flip, self._scale_np, self._shift_np, target.numpy())
        return target

    def tensors(
        self, x: torch.Tensor, d: ViewDraws, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The view by tensor operations, on any device (the GPU form).

        Args: x (B, 3, H, W) float in 8-bit units; d: the view's draws; out: optional target.
        Returns: (B, 3, S, S) float32, normalised (``out`` when given).
        """
        out_view = crop_resize(x, torch.from_numpy(d.boxes), d.out_h, d.out_w)
        out_view = out_view.round_().clamp_(0.0, 255.0).div_(255.0)
        if self.jitter:
            self._jitter(out_view, d)
        pick = _where(d.grey, out_view.device)
        if pick is not None:
            out_view[pick] = cb.grey(out_view[pick]).expand(-1, 3, -1, -1)
        picked = np.flatnonzero(d.blur)
        if picked.size:
            radius = blur_radius(d.sigma[picked], d.out_h, d.out_w)
            pick = torch.from_numpy(picked).to(out_view.device)
            sigmas = torch.from_numpy(d.sigma[picked])
            out_view[pick] = blur_batch(out_view[pick], sigmas, radius)
        return self._tail(out_view, d, out)

    def _jitter(self, x: torch.Tensor, d: ViewDraws) -> None:
        """Colour jitter in place on x (B, 3, S, S) in [0, 1].

        The jittered samples are gathered once; before each position of the op order they are
        re-sorted by the op they take there, so that every op runs on one contiguous slice (5
        gathers in all, where indexing each (position, op) pair would take 16 gathers and 16
        scatters).
        """
        n = len(self.jitter)
        chosen = np.flatnonzero(d.jitter)
        if chosen.size == 0:
            return
        factors, order = d.factors[chosen], d.order[chosen]
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

    def _tail(self, x: torch.Tensor, d: ViewDraws, target: torch.Tensor | None) -> torch.Tensor:
        """8-bit levels, solarization, equalization, flip and normalisation, as tensors."""
        out = x.mul_(255.0).round_().clamp_(0.0, 255.0)
        pick = _where(d.solarize, out.device)
        if pick is not None:
            out[pick] = cb.solarize(out[pick], SOLARIZE_THRESHOLD, 255.0)
        pick = _where(d.equalize, out.device)
        if pick is not None:
            out[pick] = tvf.equalize(out[pick].to(torch.uint8)).to(out.dtype)
        pick = _where(d.flip, out.device)
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
        compiled: augment CPU batches with the compiled kernels (False: with the tensor
            operations a GPU batch takes; the tests compare the two).

    """

    #: Datasets hand this transform whole batches (see :mod:`~solo_diversity.data.batch.pixels`).
    batched = True

    def __init__(
        self,
        specs: Sequence[AugmentationSpec],
        mean: Sequence[float],
        std: Sequence[float],
        compiled: bool = True,
    ) -> None:
        if not specs:
            raise UserError("augmentations must hold at least one entry")
        self.compiled = compiled
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
        targets = list(out) if out is not None else [None] * len(self._views)
        draws = [view.draws(seeds, k, sizes) for k, view in enumerate(self._views)]
        if pixels.device.type == "cpu" and self.compiled:
            pixels = pixels.contiguous()
            return [
                view.compiled(pixels, d, target)
                for view, d, target in zip(self._views, draws, targets, strict=True)
            ]
        x = pixels.permute(0, 3, 1, 2).to(torch.float32)
        return [
            view.tensors(x, d, target)
            for view, d, target in zip(self._views, draws, targets, strict=True)
        ]

    def __repr__(self) -> str:
        return f"BatchAugment({len(self._views)} views: {[v.spec for v in self._views]})"
