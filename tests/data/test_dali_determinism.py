# SPDX-License-Identifier: MIT
"""DALI views as a function of the sample seed: the laws of the drawn parameters, the same views
whatever the build, batch size or resume, and the parameters actually applied."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from solo_diversity.data import DaliPretrainDataModule, parse_augmentations
from solo_diversity.data.dali.pipeline import (
    BLUR,
    BRIGHTNESS,
    CONTRAST,
    EQUALIZE,
    FLIP,
    GRAYSCALE,
    HUE,
    JITTER,
    NUM_PARAMS,
    ROI,
    SATURATION,
    SIGMA,
    SOLARIZE,
    view_params,
    view_specs,
)
from solo_diversity.data.datasets import seeded_draws
from solo_diversity.data.sampler import sample_seeds

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
#: Every block on, with rates far from 0 and 1 (equalization included).
FULL = {
    "crop_size": 8,
    "num_crops": 2,
    "rrc": {"crop_min_scale": 0.25, "crop_max_scale": 0.9},
    "color_jitter": {
        "prob": 0.8,
        "brightness": 0.4,
        "contrast": 0.4,
        "saturation": 0.2,
        "hue": 0.1,
    },
    "grayscale": {"prob": 0.2},
    "gaussian_blur": {"prob": 0.5},
    "solarization": {"prob": 0.3},
    "equalization": {"prob": 0.4},
    "horizontal_flip": {"prob": 0.5},
}
SMALL = {**FULL, "crop_size": 6, "num_crops": 1}


def spec_of(**entry):
    (spec,) = parse_augmentations([{"crop_size": 8, "num_crops": 1, **entry}])
    return spec


def draws(spec, n=2000, height=60, width=80):
    """(n, NUM_PARAMS) rows for the seeds of positions 0..n-1 of pass 0."""
    rows = []
    for seed in sample_seeds(7, 0, np.arange(n)).tolist():
        with seeded_draws(seed):
            rows.append(view_params(spec, height, width))
    return np.stack(rows)


def test_drawn_parameters_follow_the_augmentation_laws():
    (spec,) = parse_augmentations([FULL])
    p = draws(spec)
    assert p.shape == (2000, NUM_PARAMS) and p.dtype == np.float32
    for slot, rate in (
        (JITTER, 0.8),
        (GRAYSCALE, 0.2),
        (BLUR, 0.5),
        (SOLARIZE, 0.3),
        (EQUALIZE, 0.4),
        (FLIP, 0.5),
    ):
        assert set(np.unique(p[:, slot])) == {0.0, 1.0}
        assert abs(p[:, slot].mean() - rate) < 0.035, slot  # 3.5 sigma at p = 0.5
    for slot, strength in ((BRIGHTNESS, 0.4), (CONTRAST, 0.4), (SATURATION, 0.2)):
        lo, hi = 1 - strength, 1 + strength
        assert lo <= p[:, slot].min() < lo + 0.01 and hi - 0.01 < p[:, slot].max() <= hi
        assert abs(p[:, slot].mean() - 1.0) < 0.01
    assert -36.0 <= p[:, HUE].min() < -35.5 and 35.5 < p[:, HUE].max() <= 36.0  # +-0.1 turn
    assert 0.1 <= p[:, SIGMA].min() < 0.11 and 1.99 < p[:, SIGMA].max() <= 2.0
    top, left, bottom, right = p[:, ROI].T
    assert (top >= 0).all() and (left >= 0).all() and (bottom <= 60).all() and (right <= 80).all()
    h, w = bottom - top, right - left
    assert np.array_equal(top, np.round(top)) and np.array_equal(h, np.round(h))
    area = h * w / (60 * 80)
    # area ~ U[0.25, 0.9] given that the box fits, up to rounding the sides to whole pixels
    assert 0.25 * 0.93 < area.min() < 0.26 and 0.88 < area.max() < 0.9 * 1.07
    aspect = w / h
    assert 0.75 * 0.95 < aspect.min() and aspect.max() < 4 / 3 * 1.05
    # the same law as torchvision's RandomResizedCrop (its own draws, 2,000 of them)
    torch.manual_seed(0)
    image = torch.zeros(3, 60, 80)
    boxes = [
        v2.RandomResizedCrop.get_params(image, [0.25, 0.9], [3 / 4, 4 / 3]) for _ in range(2000)
    ]
    ref_area = np.array([bh * bw for _, _, bh, bw in boxes]) / (60 * 80)
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert abs(np.quantile(area, q) - np.quantile(ref_area, q)) < 0.03, q


def test_blocks_that_are_off_keep_neutral_parameters():
    p = draws(spec_of(rrc={"enabled": False}), n=200, height=10, width=30)
    assert (p[:, ROI] == [0, 0, 10, 30]).all()
    assert (p[:, [JITTER, GRAYSCALE, BLUR, SOLARIZE, EQUALIZE, FLIP]] == 0).all()
    assert (p[:, [BRIGHTNESS, CONTRAST, SATURATION]] == 1).all() and (p[:, HUE] == 0).all()


def test_a_box_that_never_fits_falls_back_to_the_centred_crop():
    # A 4 x 100 strip: no box of aspect 3/4..4/3 and area >= 0.5 fits in 10 tries.
    p = draws(spec_of(rrc={"crop_min_scale": 0.5}), n=50, height=4, width=100)
    assert (p[:, ROI] == [0, 47, 4, 52]).all()  # round(4 * 4/3) = 5 columns, centred


def test_parameters_are_a_function_of_the_seed_alone():
    (spec,) = parse_augmentations([FULL])
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    with seeded_draws(99):
        first = view_params(spec, 60, 80)
    assert torch.equal(torch.rand(3), before)  # the caller's stream is untouched
    torch.manual_seed(5)
    with seeded_draws(99):
        again = view_params(spec, 60, 80)
    with seeded_draws(100):
        other = view_params(spec, 60, 80)
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def noise_subset(build_subset, images, n=16):
    files = {
        f"img{i:02d}.png": images.encode(images.noise_rgb((20, 16), i), "PNG") for i in range(n)
    }
    return build_subset({"a": files}, seed=3)


def dm_of(subset, tmp_path, seed=1, **kwargs):
    kwargs = {"batch_size": 4, "num_workers": 0, **kwargs}
    return DaliPretrainDataModule(
        subset,
        parse_augmentations([FULL, SMALL]),
        MEAN,
        STD,
        seed=seed,
        screen_cache=tmp_path / "screen.u8",
        **kwargs,
    )


def views_by_position(dm, epoch):
    """{index position: (view_0, ..., view_2)} of one epoch."""
    dm.sampler.set_epoch(epoch)
    out = {}
    for indexes, views, _ in dm.train_dataloader():
        for k, position in enumerate(indexes.tolist()):
            out[position] = tuple(v[k] for v in views)
    dm.teardown("fit")
    return out


def equal_views(a, b):
    return a.keys() == b.keys() and all(
        all(torch.equal(x, y) for x, y in zip(a[p], b[p], strict=True)) for p in a
    )


def test_same_seed_same_views_across_builds_and_batch_compositions(build_subset, images, tmp_path):
    subset = noise_subset(build_subset, images)
    ref = views_by_position(dm_of(subset, tmp_path), 0)
    assert len(ref) == 16 and [tuple(v.shape) for v in ref[0]] == [(3, 8, 8)] * 2 + [(3, 6, 6)]
    # another build; batches of 8 (other neighbours, other places in the batch)
    assert equal_views(views_by_position(dm_of(subset, tmp_path), 0), ref)
    assert equal_views(views_by_position(dm_of(subset, tmp_path, batch_size=8), 0), ref)
    # another pass or another run seed: other seeds, other views of the same images
    for other in (
        views_by_position(dm_of(subset, tmp_path), 1),
        views_by_position(dm_of(subset, tmp_path, seed=2), 0),
    ):
        assert other.keys() == ref.keys()
        assert all(not torch.equal(other[p][0], ref[p][0]) for p in ref)
    # and two views of one sample differ from each other
    assert all(not torch.equal(ref[p][0], ref[p][1]) for p in ref)


def test_a_resumed_epoch_gets_the_uninterrupted_views(build_subset, images, tmp_path):
    subset = noise_subset(build_subset, images)
    whole = dm_of(subset, tmp_path)
    whole.sampler.set_epoch(1)
    expected = list(whole.train_dataloader())
    killed = dm_of(subset, tmp_path)
    killed.sampler.set_epoch(1)
    list(itertools.islice(iter(killed.train_dataloader()), 2))
    state = killed.train_dataloader().state_dict()
    assert state["position"]["epoch"] == 1 and state["position"]["batches"] == 2
    resumed = dm_of(subset, tmp_path)
    resumed.train_dataloader().load_state_dict(state)
    got = list(resumed.train_dataloader())
    assert len(got) == len(expected) - 2 == 2
    for (i, v, y), (ei, ev, ey) in zip(got, expected[2:], strict=True):
        assert torch.equal(i, ei) and torch.equal(y, ey)
        assert all(torch.equal(a, b) for a, b in zip(v, ev, strict=True))
    for dm in (whole, killed, resumed):
        dm.teardown("fit")


def gradient_png(images, width=40, height=30):
    """R = x, G = y, B = 128: a view's box and flip can be read back from its pixels."""
    xs = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    ys = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    rgb = np.stack([xs, ys, np.full_like(xs, 128)], axis=-1).round().astype(np.uint8)
    return images.encode(Image.fromarray(rgb, "RGB"), "PNG")


@pytest.mark.parametrize("rank", [0, 1])
def test_each_view_applies_its_samples_drawn_box_flip_and_brightness(
    build_subset, images, tmp_path, rank
):
    subset = build_subset({"a": {f"g{i:02d}.png": gradient_png(images) for i in range(32)}})
    entry = {
        "crop_size": 16,
        "num_crops": 1,
        "rrc": {"crop_min_scale": 0.2},
        "horizontal_flip": {"prob": 0.5},
        "color_jitter": {"prob": 0.5, "brightness": 0.3},
    }
    dm = DaliPretrainDataModule(
        subset,
        parse_augmentations([entry]),
        (0.0,) * 3,
        (1.0,) * 3,
        batch_size=8,
        num_workers=0,
        seed=4,
        screen_cache=tmp_path / "g.u8",
    )
    dm.rank, dm.world_size = rank, 2
    dm.sampler = dm._make_sampler()
    dm.sampler.set_epoch(2)
    views = torch.cat([b[1][0] for b in dm.train_dataloader()])
    (spec,) = view_specs(dm.specs)
    rows = []
    for seed in dm.sampler.seeds(2).tolist():
        with seeded_draws(seed):
            rows.append(view_params(spec, 30, 40))
    p = np.stack(rows)
    assert len(views) == len(p) == 16
    r, g, b = views[:, 0], views[:, 1], views[:, 2]
    # Flip: R falls from left to right exactly in the flipped views.
    assert np.array_equal((r[:, :, -1].mean(1) < r[:, :, 0].mean(1)).numpy(), p[:, FLIP] == 1)
    # Brightness: B (128 everywhere) is scaled by the factor in the jittered views only.
    factor = np.where(p[:, JITTER] == 1, p[:, BRIGHTNESS], 1.0)
    assert np.abs(b.mean((1, 2)).numpy() * 255 - np.round(128 * factor)).max() <= 1.0
    # Box: in the views left unjittered (no clipping), G spans the box's height of the gradient
    # from the first output row's centre to the last's, 15/16 of it.
    plain = p[:, JITTER] == 0
    top, _, bottom, _ = p[plain][:, ROI].T
    span = (g[plain, -1, :].mean(1) - g[plain, 0, :].mean(1)).numpy() * 255
    assert plain.sum() >= 4 and len(set(bottom - top)) >= 3
    assert np.abs(span - (bottom - top) * 15 / 16 / 29 * 255).max() < 2.0
    dm.teardown("fit")
