# SPDX-License-Identifier: MIT
"""The batched small-image path: Pillow's pixels, torchvision's laws, per-sample determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from solo_diversity.data import MultiViewTransform, parse_augmentations
from solo_diversity.data.batch.augment import BatchAugment
from solo_diversity.data.batch.crop import (
    RRC_DRAWS,
    counter_uniforms,
    crop_resize,
    pillow_vertical_first,
    rrc_boxes,
)
from solo_diversity.data.fast_cpu import rrc_box
from solo_diversity.errors import UserError

ZERO_ONE = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}


def _photo_like(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth random colours with a few sharp edges (bicubic overshoot gets clipped there)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR))
    img = img.copy()
    img[height // 2 :, : width // 3] = rng.integers(0, 256, 3, dtype=np.uint8)
    return img


def test_counter_uniforms_are_a_function_of_seed_and_stream():
    u = counter_uniforms(np.array([3, 7, 3]), 0, 5)
    assert u.shape == (3, 5) and ((u >= 0) & (u < 1)).all()
    np.testing.assert_array_equal(u[0], u[2])
    assert not np.array_equal(u[0], u[1])
    assert not np.array_equal(u[0], counter_uniforms(np.array([3]), 1, 5)[0])
    many = counter_uniforms(np.arange(20_000), 0, 2)
    assert abs(many.mean() - 0.5) < 0.005 and abs(np.corrcoef(many.T)[0, 1]) < 0.02


@pytest.mark.parametrize("out_size", [32, 24, 12])
def test_crop_resize_is_pillows_crop_then_bicubic_resize(out_size):
    img = _photo_like(40, 48, seed=out_size)
    n = 300
    u = counter_uniforms(np.arange(n), out_size, RRC_DRAWS)
    boxes = rrc_boxes(u, np.full(n, 40), np.full(n, 48), (0.08, 1.0))
    x = torch.from_numpy(img).permute(2, 0, 1).float()[None].expand(n, -1, -1, -1)
    ours = crop_resize(x, torch.from_numpy(boxes), out_size, out_size).round().clamp(0, 255)
    both_orders = pillow_vertical_first(
        torch.from_numpy(boxes[:, 2]), torch.from_numpy(boxes[:, 3]), out_size, out_size
    )
    assert 0 < int(both_orders.sum()) < n  # both pass orders are exercised
    diffs = []
    for b, (top, left, h, w) in enumerate(boxes.tolist()):
        crop = Image.fromarray(img).crop((left, top, left + w, top + h))
        ref = np.asarray(crop.resize((out_size, out_size), Image.Resampling.BICUBIC))
        diffs.append(np.abs(ours[b].permute(1, 2, 0).numpy() - ref.astype(np.float32)))
    diff = np.stack(diffs)
    # Pillow's 22-bit fixed-point weights round differently in rare pixels: 2 levels at most.
    assert diff.max() <= 2.0 and (diff > 1).mean() < 1e-3 and diff.mean() < 0.25


def test_rrc_boxes_follow_the_per_image_law():
    """Area share and aspect of the batched boxes match torchvision's law (fast path's boxes)."""
    n, (height, width) = 4000, (32, 40)
    u = counter_uniforms(np.arange(n), 0, RRC_DRAWS)
    ours = rrc_boxes(u, np.full(n, height), np.full(n, width), (0.08, 1.0))
    torch.manual_seed(0)
    ref = np.array([rrc_box(height, width, (0.08, 1.0)) for _ in range(n)])
    for boxes in (ours, ref):
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= height).all()
        assert (boxes[:, 1] >= 0).all() and (boxes[:, 1] + boxes[:, 3] <= width).all()
    area = lambda b: b[:, 2] * b[:, 3] / (height * width)  # noqa: E731
    aspect = lambda b: np.log(b[:, 3] / b[:, 2])  # noqa: E731
    for stat in (area, aspect):
        a, r = stat(ours), stat(ref)
        assert abs(a.mean() - r.mean()) < 4 * np.sqrt(a.var() / n + r.var() / n)
    centre = (ours[:, 0] + ours[:, 2] / 2) / height
    assert abs(centre.mean() - 0.5) < 0.02


def _spec(**blocks):
    entry = {"crop_size": 32, "num_crops": 1, **ZERO_ONE, **blocks}
    return parse_augmentations([entry])


def test_deterministic_views_equal_the_torchvision_reference():
    """With rrc off and every op certain, a view is the reference pipeline's (within 1 level)."""
    img = _photo_like(32, 32, seed=3)
    cases = [
        {"grayscale": {"prob": 1.0}},
        {"solarization": {"prob": 1.0}, "horizontal_flip": {"prob": 1.0}},
        {"equalization": {"prob": 1.0}},
        {"solarization": {"prob": 1.0}, "equalization": {"prob": 1.0}},
    ]
    for blocks in cases:
        specs = _spec(rrc={"enabled": False}, **blocks)
        ours = BatchAugment(specs, (0, 0, 0), (1, 1, 1))(torch.from_numpy(img)[None], [0])[0][0]
        ref = MultiViewTransform(specs, (0, 0, 0), (1, 1, 1))(Image.fromarray(img))[0]
        assert (ours - ref).abs().max().item() * 255 <= 1.0 + 1e-4, blocks


def test_a_samples_views_do_not_depend_on_its_batch():
    specs = parse_augmentations(
        [
            {
                "crop_size": 24,
                "num_crops": 2,
                "color_jitter": {
                    "prob": 0.8,
                    "brightness": 0.4,
                    "contrast": 0.4,
                    "saturation": 0.2,
                    "hue": 0.1,
                },
                "grayscale": {"prob": 0.2},
                "gaussian_blur": {"prob": 0.5},
                "solarization": {"prob": 0.2},
                "horizontal_flip": {"prob": 0.5},
            }
        ]
    )
    aug = BatchAugment(specs, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    imgs = torch.from_numpy(np.stack([_photo_like(32, 32, seed=s) for s in range(8)]))
    seeds = np.arange(100, 108)
    whole = aug(imgs, seeds)
    alone = aug(imgs[5:6], seeds[5:6])
    shuffled = aug(imgs[[5, 0, 2]], seeds[[5, 0, 2]])
    for k in range(2):
        torch.testing.assert_close(whole[k][5], alone[k][0], rtol=0, atol=1e-5)
        torch.testing.assert_close(whole[k][5], shuffled[k][0], rtol=0, atol=1e-5)
    assert not torch.equal(whole[0][5], whole[1][5])  # two views, two draws
    assert whole[0].shape == (8, 3, 24, 24) and whole[0].dtype == torch.float32


def test_jitter_and_flip_are_applied_at_their_rates():
    n = 2000
    img = _photo_like(32, 32, seed=1)
    imgs = torch.from_numpy(img)[None].expand(n, -1, -1, -1).contiguous()
    specs = _spec(rrc={"enabled": False}, horizontal_flip={"prob": 0.3})
    view = BatchAugment(specs, (0, 0, 0), (1, 1, 1))(imgs, np.arange(n))[0]
    flipped = (view != view[:1]).flatten(1).any(1).float().mean().item()
    assert abs(flipped - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
    specs = _spec(rrc={"enabled": False}, color_jitter={"prob": 0.6, "brightness": 0.5})
    view = BatchAugment(specs, (0, 0, 0), (1, 1, 1))(imgs, np.arange(n))[0]
    original = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    changed = ((view - original).abs().flatten(1).amax(1) > 1.5 / 255).float().mean().item()
    assert abs(changed - 0.6) < 0.05  # a factor within ~0.3% of 1 changes nothing


def test_rrc_disabled_with_mixed_sizes_is_one_line():
    specs = _spec(rrc={"enabled": False})
    imgs = torch.zeros(2, 32, 32, 3, dtype=torch.uint8)
    with pytest.raises(UserError, match="rrc disabled needs images of one size"):
        BatchAugment(specs, (0, 0, 0), (1, 1, 1))(imgs, [0, 1], np.array([[32, 32], [20, 32]]))
