# SPDX-License-Identifier: MIT
"""Compiled CPU kernels of the batched small-image path: one loop per stage over the whole batch.

This module owns the CPU arithmetic of :class:`~solo_diversity.data.batch.augment.BatchView`.
The same pipeline written as torch tensor operations (kept for batches on a GPU) spends most of
its time at 32 px on memory passes and per-call overhead: the hue rotation alone is ~30
elementwise passes over the batch, the per-position jitter op order needs gathers and scatters,
and a view costs ~700 torch calls. No library applies torchvision's ColorJitter, Pillow's box
resampling or a Gaussian blur with a different parameter per sample in one call, so these four
kernels are written here with Numba: each walks the batch once, one sample at a time, all its
operations in cache, about 10x cheaper than the tensor form. They take the draws that
:class:`~solo_diversity.data.batch.augment.BatchView` makes (one law for both forms) and compute
the same formulas in float32, so the two agree up to float summation order (a level now and then
where a value sits at a rounding boundary; the tests bound it).

Kernels (``x`` is always (B, 3, H, W) float32, sample i's draws in row i of each array):

- :func:`crop_resize` uint8 (B, H, W, 3) -> [0, 1], Pillow's two passes with 8-bit rounding
  between them, in the order Pillow takes for the box, weights from a per-length table;
- :func:`colour` the ColorJitter ops in each sample's order, then grayscale;
- :func:`blur` a separable Gaussian with per-sample taps and reflection at the border;
- :func:`finish` 8-bit rounding, solarization, horizontal flip and normalisation.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_F = np.float32
_LR, _LG, _LB = _F(0.299), _F(0.587), _F(0.114)  # ITU-R 601 luma, as color_batch.LUMA
#: Op codes of :func:`colour`, by the jitter op names of ``augment.jitter_ops``.
OP_CODES = {"brightness": 0, "contrast": 1, "saturation": 2, "hue": 3}

_jit = njit(cache=True, fastmath=True, boundscheck=False, nogil=True)


@_jit
def _level(v):
    """Round to the nearest 8-bit level (half to even, as torch.round) and clip to [0, 255]."""
    return min(max(np.rint(v), _F(0.0)), _F(255.0))


@_jit
def _resample_lines(src, weights, taps, dst, levels):
    """``dst[s] = sum_t weights[s, t] src[t]`` over the taps of s, lines of contiguous values.

    Lines hold all three channels of a row (``(rows, 3 x cols)``), so each tap is one long
    vectorised loop; the other axis is resampled by the same function on a transposed copy.
    ``levels`` rounds the result to 8-bit levels (Pillow's rounding between its passes).
    """
    for s in range(dst.shape[0]):
        row = dst[s]
        row[:] = _F(0.0)
        for t in range(taps[s, 0], taps[s, 1]):
            w, line = weights[s, t], src[t]
            for m in range(row.shape[0]):
                row[m] += w * line[m]
        if levels:
            for m in range(row.shape[0]):
                row[m] = _level(row[m])


@_jit
def _turn(src, dst):
    """(a, 3, b) -> (b, 3, a): swap the outer and inner axes, channels kept in the middle."""
    for j in range(src.shape[0]):
        for c in range(3):
            for k in range(src.shape[2]):
                dst[k, c, j] = src[j, c, k]


@_jit
def crop_resize(pixels, boxes, vertical_first, row_weights, row_taps, col_weights, col_taps, out):
    """Crop each sample's box and resize it with Pillow's antialiased bicubic filter.

    Args:
        pixels: (B, H, W, 3) uint8 images.
        boxes: (B, 4) int64 boxes ``(top, left, h, w)``.
        vertical_first: (B,) bool, Pillow's pass order for the box.
        row_weights: (H + 1, S_h, H) float32: weight of box row t for output row i, by box
            length (``batch_crop.length_weights``).
        row_taps: (H + 1, S_h, 2) int64 first and last + 1 nonzero t.
        col_weights: (W + 1, S_w, W) float32, as row_weights for columns.
        col_taps: (W + 1, S_w, 2) int64, as row_taps for columns.
        out: (B, 3, S_h, S_w) float32, written in [0, 1] (8-bit levels / 255).

    """
    batch, height, width = pixels.shape[0], pixels.shape[1], pixels.shape[2]
    out_h, out_w = out.shape[2], out.shape[3]
    # Scratch reused by every sample, shaped per box: (outer axis, channel, inner axis) each.
    size = 3 * max(out_h, height) * max(out_w, width)
    box_buf, first_buf, turned_buf = np.empty(size, _F), np.empty(size, _F), np.empty(size, _F)
    for i in range(batch):
        top, left, h, w = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        # The first pass runs along the box's rows (vertical) or its columns (horizontal).
        if vertical_first[i]:
            w1, t1, w2, t2, outer, inner, s1, s2 = (
                row_weights[h],
                row_taps[h],
                col_weights[w],
                col_taps[w],
                h,
                w,
                out_h,
                out_w,
            )
        else:
            w1, t1, w2, t2, outer, inner, s1, s2 = (
                col_weights[w],
                col_taps[w],
                row_weights[h],
                row_taps[h],
                w,
                h,
                out_w,
                out_h,
            )
        box = box_buf[: 3 * outer * inner].reshape((outer, 3, inner))
        _load_box(pixels[i], top, left, h, w, not vertical_first[i], box)
        first = first_buf[: 3 * s1 * inner].reshape((s1, 3 * inner))
        _resample_lines(box.reshape((outer, 3 * inner)), w1, t1, first, True)
        turned = turned_buf[: 3 * inner * s1].reshape((inner, 3, s1))
        _turn(first.reshape((s1, 3, inner)), turned)
        second = first_buf[: 3 * s2 * s1].reshape((s2, 3 * s1))
        _resample_lines(turned.reshape((inner, 3 * s1)), w2, t2, second, False)
        _store(second.reshape((s2, 3, s1)), out[i], vertical_first[i])


@_jit
def _load_box(image, top, left, h, w, columns, box):
    """The box of an (H, W, 3) uint8 image as float (h, 3, w), or (w, 3, h) when ``columns``."""
    if columns:
        for y in range(h):
            for x in range(w):
                for c in range(3):
                    box[x, c, y] = image[top + y, left + x, c]
    else:
        for y in range(h):
            for x in range(w):
                for c in range(3):
                    box[y, c, x] = image[top + y, left + x, c]


@_jit
def _store(src, dst, turned):
    """Levels / 255 into dst (3, S_h, S_w) from (S_h, 3, S_w), or (S_w, 3, S_h) when turned."""
    for c in range(3):
        for r in range(dst.shape[1]):
            for q in range(dst.shape[2]):
                v = src[q, c, r] if turned else src[r, c, q]
                dst[c, r, q] = _level(v) / _F(255.0)


@_jit
def _clip01(v):
    return min(max(v, _F(0.0)), _F(1.0))


@_jit
def _hue_channel(hue, n, value, chroma):
    """HSV -> RGB closed form for one channel (n = 5, 3, 1 for R, G, B); see rgb_hue_shift."""
    k = hue + n
    if k >= _F(6.0):
        k -= _F(6.0)
    return value - chroma * _clip01(min(k, _F(4.0) - k))


@_jit
def _hue_shift(r, g, b, shift):
    """Rotate the HSV hue of every pixel of one image by ``shift`` turns (in place)."""
    sextants = _F(6.0) * shift
    for p in range(r.shape[0]):
        red, green, blue = r[p], g[p], b[p]
        value = max(max(red, green), blue)
        chroma = value - min(min(red, green), blue)
        if value == red:
            hue = green - blue
        elif value == green:
            hue = blue - red + _F(2.0) * chroma
        else:
            hue = red - green + _F(4.0) * chroma
        hue = hue / max(chroma, _F(1e-12)) + sextants
        hue -= np.floor(hue * _F(1.0 / 6.0)) * _F(6.0)
        r[p] = _hue_channel(hue, _F(5.0), value, chroma)
        g[p] = _hue_channel(hue, _F(3.0), value, chroma)
        b[p] = _hue_channel(hue, _F(1.0), value, chroma)


@_jit
def _blend(r, g, b, f, per_pixel_grey, mean):
    """``clip(f x + (1 - f) m)`` with m the pixel's grey (saturation) or ``mean`` (contrast)."""
    for p in range(r.shape[0]):
        m = _LR * r[p] + _LG * g[p] + _LB * b[p] if per_pixel_grey else mean
        offset = (_F(1.0) - f) * m
        r[p] = _clip01(r[p] * f + offset)
        g[p] = _clip01(g[p] * f + offset)
        b[p] = _clip01(b[p] * f + offset)


@_jit
def colour(x, jitter, codes, order, factors, grey):
    """ColorJitter then RandomGrayscale, in place on x in [0, 1].

    Args:
        x: (B, 3, H, W) float32 contiguous.
        jitter: (B,) bool: the sample is jittered.
        codes: (n,) int64 :data:`OP_CODES` of the spec's jitter ops.
        order: (B, n) int64: the op (index into codes) at each position.
        factors: (B, n) float32: each op's factor (hue: its shift in turns).
        grey: (B,) bool: the sample is turned grey (luma in all three channels).

    """
    batch, _, height, width = x.shape
    m = height * width
    for i in range(batch):
        r, g, b = x[i, 0].reshape(m), x[i, 1].reshape(m), x[i, 2].reshape(m)
        if jitter[i]:
            for position in range(order.shape[1]):
                k = order[i, position]
                code, f = codes[k], factors[i, k]
                if code == 0:
                    for p in range(m):
                        r[p], g[p], b[p] = _clip01(r[p] * f), _clip01(g[p] * f), _clip01(b[p] * f)
                elif code == 1:
                    total = 0.0  # float64: the mean of m float32 lumas without drift
                    for p in range(m):
                        total += _LR * r[p] + _LG * g[p] + _LB * b[p]
                    _blend(r, g, b, f, False, _F(total / m))
                elif code == 2:
                    _blend(r, g, b, f, True, _F(0.0))
                else:
                    _hue_shift(r, g, b, f)
        if grey[i]:
            for p in range(m):
                y = _LR * r[p] + _LG * g[p] + _LB * b[p]
                r[p], g[p], b[p] = y, y, y


@_jit
def _reflect(j, n):
    """Index j folded into [0, n) without repeating the edge (OpenCV's BORDER_REFLECT_101)."""
    if j < 0:
        j = -j
    if j > n - 1:
        j = 2 * (n - 1) - j
    return j


@_jit
def blur(x, picked, taps):
    """Separable Gaussian blur of the picked samples, in place (horizontal pass, then vertical).

    Args:
        x: (B, 3, H, W) float32.
        picked: (n,) int64 sample rows to blur.
        taps: (n, 2 R + 1) float32 normalised weights (``batch_crop.gaussian_taps``), zero
            beyond each sample's own radius, which bounds its loops.

    """
    _, _, height, width = x.shape
    big = (taps.shape[1] - 1) // 2
    padded = np.empty(width + 2 * big, dtype=_F)  # one row, reflected beyond its ends
    across = np.empty((height, width), dtype=_F)
    for k in range(picked.shape[0]):
        i, radius = picked[k], big
        while radius > 0 and taps[k, big - radius] == _F(0.0):
            radius -= 1
        w = taps[k, big - radius : big + radius + 1]
        for c in range(3):
            plane = x[i, c]
            for y in range(height):
                padded[radius : radius + width] = plane[y]
                for q in range(1, radius + 1):
                    padded[radius - q] = plane[y, _reflect(-q, width)]
                    padded[radius + width - 1 + q] = plane[y, _reflect(width - 1 + q, width)]
                row = across[y]
                row[:] = _F(0.0)
                for t in range(2 * radius + 1):
                    wt = w[t]
                    for q in range(width):
                        row[q] += wt * padded[q + t]
            for y in range(height):
                row = plane[y]
                row[:] = _F(0.0)
                for t in range(2 * radius + 1):
                    wt, line = w[t], across[_reflect(y + t - radius, height)]
                    for q in range(width):
                        row[q] += wt * line[q]


@_jit
def finish(x, solarize, flip, scale, shift, out):
    """8-bit levels, solarization (levels >= 128 inverted), flip, then ``v * scale - shift``.

    Args:
        x: (B, 3, H, W) float32 in [0, 1], overwritten with the levels.
        solarize: (B,) bool: invert levels >= 128.
        flip: (B,) bool: mirror left-right.
        scale: (3,) float32 1 / (255 std).
        shift: (3,) float32 mean / std.
        out: (B, 3, H, W) float32 target.

    """
    batch, _, height, width = x.shape
    for i in range(batch):
        for c in range(3):
            a, b = scale[c], shift[c]
            for y in range(height):
                row, dst = x[i, c, y], out[i, c, y]
                for q in range(width):
                    row[q] = _level(row[q] * _F(255.0))
                if solarize[i]:
                    for q in range(width):
                        row[q] = _F(255.0) - row[q] if row[q] >= _F(128.0) else row[q]
                if flip[i]:
                    for q in range(width):
                        dst[width - 1 - q] = row[q] * a - b
                else:
                    for q in range(width):
                        dst[q] = row[q] * a - b
