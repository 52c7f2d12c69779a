# SPDX-License-Identifier: MIT
"""RandomResizedCrop for a whole batch: per-sample boxes and bicubic resampling as matrix products.

This module owns the geometric half of the batched small-image path
(:mod:`~solo_diversity.data.batch.augment`):

- :func:`counter_uniforms` gives each sample its own stream of uniforms from its seed alone
  (SplitMix64 of (seed, stream, draw)), so a sample's views do not depend on which batch, worker
  or device makes them, and B samples cost one vectorised call instead of B generator calls;
- :func:`rrc_boxes` draws torchvision's RandomResizedCrop box law for every sample at once
  (10 tries of area ~ U(scale) x H x W and log-aspect ~ U(log ratio), the first that fits placed
  uniformly, else the largest centred box with the aspect clamped);
- :func:`resample_weights` builds, per sample, the (S, L) matrix of Pillow's antialiased bicubic
  filter (a = -0.5, support 2 x max(1, L_box / S), taps clipped to the box and renormalised: what
  ``img.crop(box).resize((S, S), BICUBIC)`` computes), so that a crop-and-resize of the whole
  batch is two batched matrix products, ``Wy @ X @ Wx^T``. Pillow and torch's per-image kernels
  cannot take a different box per sample in one call; at 32-64 px a dense (S, L) matrix per
  sample is cheaper than any per-image call.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch

#: RandomResizedCrop aspect-ratio range (torchvision's and solo-learn's default).
RRC_RATIO = (3.0 / 4.0, 4.0 / 3.0)
_TRIES = 10
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 (wrapping): a bijective mixer of counter values."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def counter_uniforms(seeds: np.ndarray, stream: int, count: int) -> np.ndarray:
    """``count`` uniforms in [0, 1) per sample, a pure function of (seed, stream, draw number).

    Args:
        seeds: (B,) non-negative int64 sample seeds.
        stream: which stream of the sample (e.g. its view number).
        count: draws per sample.

    Returns:
        (B, count) float64; 53 random bits each.

    """
    key = _splitmix64(np.asarray(seeds, dtype=np.int64).astype(np.uint64))
    with np.errstate(over="ignore"):
        key = _splitmix64(key + np.uint64(stream) * _GOLDEN)
        counters = key[:, None] + np.arange(1, count + 1, dtype=np.uint64)[None, :] * _GOLDEN
    return (_splitmix64(counters) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


RRC_DRAWS = 2 * _TRIES + 2


def rrc_boxes(
    u: np.ndarray,
    heights: np.ndarray,
    widths: np.ndarray,
    scale: tuple[float, float],
    ratio: tuple[float, float] = RRC_RATIO,
) -> np.ndarray:
    """Torchvision's RandomResizedCrop box per sample, from :data:`RRC_DRAWS` uniforms each.

    Args:
        u: (B, RRC_DRAWS) uniforms: (area, log-aspect) for each of 10 tries, then top and left.
        heights: (B,) image heights H.
        widths: (B,) image widths W.
        scale: the crop's area range, as a share of H x W.
        ratio: the crop's aspect (w / h) range.

    Returns:
        (B, 4) int64 boxes ``(top, left, h, w)``.

    """
    height = np.asarray(heights, dtype=np.float64)[:, None]
    width = np.asarray(widths, dtype=np.float64)[:, None]
    area = height * width * (scale[0] + (scale[1] - scale[0]) * u[:, 0 : 2 * _TRIES : 2])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = np.exp(log_lo + (log_hi - log_lo) * u[:, 1 : 2 * _TRIES : 2])
    w = np.round(np.sqrt(area * aspect))  # round half to even, as Python's round
    h = np.round(np.sqrt(area / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.argmax(axis=1)
    rows = np.arange(len(u))
    found = fits[rows, first]
    h_try, w_try = h[rows, first], w[rows, first]
    # No try fitted: the whole image, its aspect clamped to the ratio range, centred.
    H, W = height[:, 0], width[:, 0]
    in_ratio = W / H
    h_fb = np.where(in_ratio < ratio[0], np.round(W / ratio[0]), H)
    w_fb = np.where(in_ratio > ratio[1], np.round(H * ratio[1]), W)
    h_box = np.where(found, h_try, h_fb).astype(np.int64)
    w_box = np.where(found, w_try, w_fb).astype(np.int64)
    span_h, span_w = H.astype(np.int64) - h_box + 1, W.astype(np.int64) - w_box + 1
    top = np.minimum((u[:, -2] * span_h).astype(np.int64), span_h - 1)
    left = np.minimum((u[:, -1] * span_w).astype(np.int64), span_w - 1)
    top = np.where(found, top, (H.astype(np.int64) - h_box) // 2)
    left = np.where(found, left, (W.astype(np.int64) - w_box) // 2)
    return np.stack([top, left, h_box, w_box], axis=1)


def _bicubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel with Pillow's a = -0.5 (torch's AA bicubic uses it too)."""
    x = x.abs()
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return torch.where(x < 1.0, near, torch.where(x < 2.0, far, torch.zeros_like(x)))


def resample_weights(
    start: torch.Tensor, length: torch.Tensor, size: int, extent: int
) -> torch.Tensor:
    """Per-sample antialiased bicubic weights from a box [start, start + length) to ``size``.

    Pillow's rule: output i has centre c = (i + 0.5) L / S inside the box; with s = max(1, L / S)
    its taps are the box pixels x in [int(c - 2s + 0.5), int(c + 2s + 0.5)) clipped to [0, L),
    weighted by bicubic((x - c + 0.5) / s) and normalised to sum 1. The weights of a box depend
    only on its length, so they come from a table of every length, shifted to the box's start.

    Args:
        start: (B,) first input pixel of each box.
        length: (B,) box lengths L (1 <= L, start + L <= extent).
        size: output length S.
        extent: the input axis length.

    Returns:
        (B, S, extent) float32 matrix; zero outside each sample's box.

    """
    table = _length_table(size, extent)  # (extent + 1, S, 2 extent): box [0, L) at column extent
    columns = torch.arange(extent)[None, :] + extent - start.to(torch.int64)[:, None]
    rows = table[length.to(torch.int64)]  # (B, S, 2 extent)
    return rows.gather(2, columns[:, None, :].expand(-1, size, -1))


@functools.lru_cache(maxsize=16)
def _length_table(size: int, extent: int) -> torch.Tensor:
    """Weights of the box [0, L) for every L in [0, extent], stored from column ``extent`` on."""
    length = torch.arange(extent + 1, dtype=torch.float64)[:, None, None].clamp(min=1.0)
    scale = length / size
    support = torch.clamp(scale, min=1.0)
    centre = (torch.arange(size, dtype=torch.float64)[None, :, None] + 0.5) * scale
    x = torch.arange(extent, dtype=torch.float64)[None, None, :]
    lo = torch.clamp(torch.floor(centre - 2.0 * support + 0.5), min=0.0)
    hi = torch.minimum(torch.floor(centre + 2.0 * support + 0.5), length)
    weights = torch.where((x >= lo) & (x < hi), _bicubic((x - centre + 0.5) / support), 0.0)
    total = weights.sum(dim=2, keepdim=True)
    weights = weights / torch.where(total == 0, 1.0, total)
    table = torch.zeros(extent + 1, size, 2 * extent, dtype=torch.float32)
    table[:, :, extent:] = weights.to(torch.float32)
    return table


@functools.lru_cache(maxsize=16)
def length_weights(size: int, extent: int) -> tuple[np.ndarray, np.ndarray]:
    """The weights of :func:`resample_weights` by box length, for loops that visit only taps.

    Returns:
        ``(weights, taps)``: (extent + 1, S, extent) float32, weights[L, i, t] of box pixel t
        (from the box's start) for output i of a box of length L; and (extent + 1, S, 2) int64,
        the first and one-past-last t with a nonzero weight (the same values as the matrices,
        so the compiled and the matrix crop sum the same terms).

    """
    weights = _length_table(size, extent)[:, :, extent:].contiguous().numpy()
    nonzero = weights != 0
    first = nonzero.argmax(axis=2)
    last = extent - nonzero[:, :, ::-1].argmax(axis=2)
    empty = ~nonzero.any(axis=2)
    taps = np.stack([np.where(empty, 0, first), np.where(empty, 0, last)], axis=2)
    return weights, taps.astype(np.int64)


def pillow_vertical_first(height: Any, width: Any, out_h: int, out_w: int) -> Any:
    """Whether Pillow (13) resamples an ``height`` x ``width`` box vertically first.

    ``height`` and ``width`` are tensors or arrays of box sides; the answer is of the same kind.

    Measured against ``Image.resize`` over every box of 4-64 px and outputs of 8-40 px: the
    vertical pass comes first when the height shrinks and shrinks by more than twice the width's
    excess over its output, else the horizontal pass does (the test suite checks it still holds).
    """
    shrink_h = height - out_h
    return (shrink_h > 0) & ((width <= out_w) | (shrink_h > 2 * (width - out_w)))


def _rows_pass(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(n, 3, H, W) -> (n, 3, S, W) with weights (n, S, H), shared by the 3 channels.

    A broadcast product writes the contiguous output directly; reshaping the input into one
    (n, H, 3W) product instead costs two transposing copies, more than the product saves.
    """
    return torch.matmul(weights.unsqueeze(1), x)


def _cols_pass(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(n, 3, H, W) -> (n, 3, H, S) with weights (n, S, W): one (n, 3H, W) @ (n, W, S) product."""
    n, c, h, w = x.shape
    return torch.bmm(x.reshape(n, c * h, w), weights.transpose(1, 2)).view(n, c, h, -1)


def gaussian_taps(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised Gaussian taps exp(-t^2 / 2 sigma^2), |t| <= min(ceil(3 sigma), radius).

    Each sample is truncated at its own 3 sigma (as the fast path's kernels: the tail holds 0.27%
    of the mass, under a level) and padded with zeros to the batch's ``radius``.

    Args: sigma (n,) standard deviations in pixels; radius: the largest taps a side.
    Returns: (n, 2 radius + 1) float32 (computed in float64, each row summing to 1).
    """
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    sigma = sigma.to(torch.float64)[:, None]
    inside = taps[None, :].abs() <= torch.ceil(3.0 * sigma)
    weights = torch.exp(-0.5 * (taps[None, :] / sigma) ** 2) * inside
    return (weights / weights.sum(dim=1, keepdim=True)).to(torch.float32)


def gaussian_matrices(sigma: torch.Tensor, size: int, radius: int) -> torch.Tensor:
    """Per-sample Gaussian blur along one axis as a (size, size) matrix, reflection folded in.

    Row i holds the :func:`gaussian_taps` t in [-radius, radius] at columns reflect(i + t) (the
    edge pixel not repeated: OpenCV's BORDER_REFLECT_101, torch's "reflect" padding). Two
    products with these matrices blur a batch as a grouped convolution with padding would, at a
    fraction of its cost on the CPU.

    Args:
        sigma: (n,) standard deviations in pixels.
        size: the axis length S (> radius).
        radius: taps on each side.

    Returns:
        (n, S, S) float32.

    """
    weights = gaussian_taps(sigma, radius)  # (n, 2r + 1)
    offsets = torch.arange(-radius, radius + 1)
    columns = torch.arange(size)[:, None] + offsets[None, :]  # (S, 2r + 1)
    columns = torch.where(columns < 0, -columns, columns)
    columns = torch.where(columns > size - 1, 2 * (size - 1) - columns, columns)
    out = torch.zeros(len(sigma), size, size)
    index = columns[None].expand(len(sigma), -1, -1)
    return out.scatter_add_(2, index, weights[:, None, :].expand(-1, size, -1).contiguous())


def blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Gaussian blur of each sample of (n, 3, H, W) with its own sigma (n,), radius taps a side."""
    _, _, height, width = x.shape
    rows = gaussian_matrices(sigma, height, radius).to(x.device)
    cols = rows if width == height else gaussian_matrices(sigma, width, radius).to(x.device)
    return _rows_pass(_cols_pass(x, cols), rows)


def crop_resize(images: torch.Tensor, boxes: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Crop each sample's box and resize it to ``out_h`` x ``out_w`` (Pillow's AA bicubic).

    Args:
        images: (B, 3, H, W) float images in 8-bit units [0, 255] (padding beyond an image's own
            size is never read).
        boxes: (B, 4) int boxes ``(top, left, h, w)``.
        out_h: output height.
        out_w: output width.

    Returns:
        (B, 3, out_h, out_w) float32 in 8-bit units, not yet rounded or clipped (the caller
        rounds to 8 bits, as Pillow does).

    """
    _, _, height, width = images.shape
    rows = resample_weights(boxes[:, 0], boxes[:, 2], out_h, height).to(images.device)
    cols = resample_weights(boxes[:, 1], boxes[:, 3], out_w, width).to(images.device)
    # Pillow rounds and clips to 8 bits between its two passes, so their order shows in the
    # pixels; samples are split by the order Pillow picks for their box.
    vertical_first = pillow_vertical_first(boxes[:, 2], boxes[:, 3], out_h, out_w)
    if not vertical_first.any():
        return _rows_pass(_cols_pass(images, cols).round_().clamp_(0.0, 255.0), rows)
    out = images.new_empty(images.shape[0], images.shape[1], out_h, out_w)
    for first_rows in (False, True):
        pick = (vertical_first == first_rows).nonzero().squeeze(1).to(images.device)
        if pick.numel() == 0:
            continue
        x, r, c = images[pick], rows[pick], cols[pick]
        if first_rows:
            out[pick] = _cols_pass(_rows_pass(x, r).round_().clamp_(0.0, 255.0), c)
        else:
            out[pick] = _rows_pass(_cols_pass(x, c).round_().clamp_(0.0, 255.0), r)
    return out
