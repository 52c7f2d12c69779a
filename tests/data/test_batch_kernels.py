# SPDX-License-Identifier: MIT
"""The batched path's compiled CPU kernels give the views of its tensor form (the GPU's).

Both forms apply the same draws; they differ only in float summation order, so a value may land
on the other side of a rounding boundary now and then. Each case turns on one stage (or all of
them) and bounds the difference at one 8-bit level in a small share of values; a kernel that
skips, repeats or misorders a stage changes most values by several levels and fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from solo_diversity.data import parse_augmentations
from solo_diversity.data.batch import kernels
from solo_diversity.data.batch.augment import BatchAugment
from solo_diversity.data.batch.crop import (
    RRC_DRAWS,
    counter_uniforms,
    length_weights,
    pillow_vertical_first,
    rrc_boxes,
)

JITTER = {"prob": 1.0, "brightness": 0.8, "contrast": 0.8, "saturation": 0.8, "hue": 0.2}
CASES = {
    "crop": {},
    "brightness": {"color_jitter": {"prob": 1.0, "brightness": 0.8}},
    "contrast": {"color_jitter": {"prob": 1.0, "contrast": 0.8}},
    "saturation": {"color_jitter": {"prob": 1.0, "saturation": 0.8}},
    "hue": {"color_jitter": {"prob": 1.0, "hue": 0.5}},
    "jitter_order": {"color_jitter": JITTER},
    "grayscale": {"grayscale": {"prob": 0.5}},
    "blur": {"gaussian_blur": {"prob": 1.0}},
    "solarize_flip": {"solarization": {"prob": 0.5}, "horizontal_flip": {"prob": 0.5}},
    "equalize": {"equalization": {"prob": 0.5}, "horizontal_flip": {"prob": 0.5}},
    "all": {
        "color_jitter": {**JITTER, "prob": 0.8},
        "grayscale": {"prob": 0.2},
        "gaussian_blur": {"prob": 0.5},
        "solarization": {"prob": 0.2},
        "horizontal_flip": {"prob": 0.5},
    },
}


def _images(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """Smooth random colours with sharp edges and saturated patches (clipping and grey pixels)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, height, width, 3), dtype=np.uint8)
    for i in range(n):
        small = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
        img = np.array(Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR))
        img[: height // 3, width // 2 :] = rng.integers(0, 256, 3, dtype=np.uint8)
        img[height // 2 :, : width // 4] = rng.integers(0, 256)  # a grey patch (chroma 0)
        out[i] = img
    return out


def _both_forms(blocks: dict, pixels: np.ndarray, sizes: np.ndarray | None, crop: int) -> tuple:
    specs = parse_augmentations(
        [{"crop_size": crop, "num_crops": 2, "mean": [0, 0, 0], "std": [1, 1, 1], **blocks}]
    )
    seeds = np.arange(len(pixels)) * 7 + 3
    tensor = torch.from_numpy(pixels)
    compiled = BatchAugment(specs, (0, 0, 0), (1, 1, 1))(tensor, seeds, sizes)
    tensors = BatchAugment(specs, (0, 0, 0), (1, 1, 1), compiled=False)(tensor, seeds, sizes)
    return torch.stack(compiled), torch.stack(tensors)


def _assert_same_levels(ours: torch.Tensor, ref: torch.Tensor) -> None:
    diff = ((ours - ref) * 255.0).abs()
    assert diff.max().item() <= 1.0 + 1e-3, f"max {diff.max().item():.2f} levels"
    assert (diff > 0.5).float().mean().item() < 2e-3, "too many values one level apart"


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_kernels_give_the_tensor_forms_views(case):
    pixels = _images(96, 32, 32, seed=len(case))
    ours, ref = _both_forms(CASES[case], pixels, None, crop=32)
    assert ours.shape == ref.shape == (2, 96, 3, 32, 32)
    _assert_same_levels(ours, ref)


def test_compiled_kernels_with_mixed_sizes_and_another_crop_size():
    """Images of several sizes padded into one canvas (the layout of SubsetPixels), crop 24."""
    canvas = np.zeros((64, 40, 36, 3), dtype=np.uint8)
    sizes = np.array([[40, 36], [32, 32], [28, 36], [40, 20]])[np.arange(64) % 4]
    for i, (h, w) in enumerate(sizes):
        canvas[i, :h, :w] = _images(1, h, w, seed=i)[0]
    canvas[:, :, :, :] = np.where(
        (np.arange(40)[:, None] < sizes[:, 0, None, None])[..., None]
        & (np.arange(36)[None, :] < sizes[:, 1, None, None])[..., None],
        canvas,
        255,  # padding a crop must never read: white would show at a box's edge
    )
    ours, ref = _both_forms(CASES["all"], canvas, sizes, crop=24)
    assert ours.shape == (2, 64, 3, 24, 24)
    _assert_same_levels(ours, ref)


def test_compiled_kernels_without_rrc_keep_the_aspect():
    pixels = _images(16, 24, 40, seed=5)
    ours, ref = _both_forms({"rrc": {"enabled": False}, **CASES["all"]}, pixels, None, crop=16)
    assert ours.shape == (2, 16, 3, 16, 26)  # Resize(16): the short side to 16, as torchvision
    _assert_same_levels(ours, ref)


def test_compiled_crop_is_pillows_crop_then_bicubic_resize():
    """The kernel against Pillow itself, box by box, both of Pillow's pass orders."""
    n, height, width, size = 200, 40, 48, 24
    img = _images(1, height, width, seed=11)[0]
    u = counter_uniforms(np.arange(n), 1, RRC_DRAWS)
    boxes = rrc_boxes(u, np.full(n, height), np.full(n, width), (0.08, 1.0))
    vertical = pillow_vertical_first(boxes[:, 2], boxes[:, 3], size, size)
    assert 0 < vertical.sum() < n
    rows, row_taps = length_weights(size, height)
    cols, col_taps = length_weights(size, width)
    out = np.empty((n, 3, size, size), dtype=np.float32)
    pixels = np.ascontiguousarray(np.broadcast_to(img, (n, height, width, 3)))
    kernels.crop_resize(pixels, boxes, vertical, rows, row_taps, cols, col_taps, out)
    diffs = []
    for b, (top, left, h, w) in enumerate(boxes.tolist()):
        crop = Image.fromarray(img).crop((left, top, left + w, top + h))
        ref = np.asarray(crop.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
        diffs.append(np.abs(out[b].transpose(1, 2, 0) * 255.0 - ref))
    diff = np.stack(diffs)
    # Pillow's 22-bit fixed-point weights round differently in rare pixels: 2 levels at most.
    assert diff.max() <= 2.0 + 1e-3 and (diff > 1).mean() < 1e-3 and diff.mean() < 0.25
