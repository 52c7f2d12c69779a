# SPDX-License-Identifier: MIT
import math
import pickle
import random

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image, ImageFilter
from torchvision import transforms as T
from torchvision.transforms import v2

from solo_diversity.data import (
    AugmentationSpec,
    ColorJitterSpec,
    MultiViewTransform,
    RRCSpec,
    blur_kernel_size,
    build_view_transform,
    crop_counts,
    dataset_stats,
    parse_augmentations,
)
from solo_diversity.data.augment import PILGaussianBlur
from solo_diversity.errors import UserError

ZERO = (0.0, 0.0, 0.0)
ONE = (1.0, 1.0, 1.0)

# solo-learn's imagenet-100 asymmetric.yaml, as plain data.
ASYMMETRIC = [
    {
        "rrc": {"enabled": True, "crop_min_scale": 0.08, "crop_max_scale": 1.0},
        "color_jitter": {
            "prob": 0.8,
            "brightness": 0.4,
            "contrast": 0.4,
            "saturation": 0.2,
            "hue": 0.1,
        },
        "grayscale": {"prob": 0.2},
        "gaussian_blur": {"prob": 1.0},
        "solarization": {"prob": 0.0},
        "equalization": {"prob": 0.0},
        "horizontal_flip": {"prob": 0.5},
        "crop_size": 224,
        "num_crops": 1,
    },
    {
        "rrc": {"enabled": True, "crop_min_scale": 0.08, "crop_max_scale": 1.0},
        "color_jitter": {
            "prob": 0.8,
            "brightness": 0.4,
            "contrast": 0.4,
            "saturation": 0.2,
            "hue": 0.1,
        },
        "grayscale": {"prob": 0.2},
        "gaussian_blur": {"prob": 0.1},
        "solarization": {"prob": 0.2},
        "equalization": {"prob": 0.0},
        "horizontal_flip": {"prob": 0.5},
        "crop_size": 224,
        "num_crops": 1,
    },
]


def test_defaults_are_solo_learns():
    (spec,) = parse_augmentations([{"crop_size": 32, "num_crops": 2}])
    assert spec == AugmentationSpec(crop_size=32, num_crops=2)
    assert spec.rrc == RRCSpec(enabled=True, crop_min_scale=0.08, crop_max_scale=1.0)
    assert spec.color_jitter == ColorJitterSpec(0.0, 0.0, 0.0, 0.0, 0.0)
    assert spec.grayscale_prob == spec.gaussian_blur_prob == spec.solarization_prob == 0.0
    assert spec.equalization_prob == spec.horizontal_flip_prob == 0.0
    assert spec.mean is None and spec.std is None


def test_parses_solo_learn_yaml_and_round_trips():
    specs = parse_augmentations(ASYMMETRIC)
    assert [s.solarization_prob for s in specs] == [0.0, 0.2]
    assert [s.gaussian_blur_prob for s in specs] == [1.0, 0.1]
    assert specs[0].color_jitter == ColorJitterSpec(0.8, 0.4, 0.4, 0.2, 0.1)
    assert specs[0].horizontal_flip_prob == 0.5 and specs[0].grayscale_prob == 0.2
    assert parse_augmentations([s.to_dict() for s in specs]) == specs
    assert parse_augmentations(OmegaConf.create(ASYMMETRIC)) == specs


def test_specs_are_frozen():
    (spec,) = parse_augmentations([{"crop_size": 32, "num_crops": 1}])
    with pytest.raises(AttributeError):
        spec.crop_size = 64  # type: ignore[misc]


def test_enabled_false_switches_a_block_off():
    entry = {"crop_size": 32, "num_crops": 1, "horizontal_flip": {"enabled": False, "prob": 0.5}}
    assert parse_augmentations([entry])[0].horizontal_flip_prob == 0.0


def test_mean_std_override_parsed():
    entry = {"crop_size": 8, "num_crops": 1, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    (spec,) = parse_augmentations([entry])
    assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.25, 0.25, 0.25)


def test_unknown_top_level_key():
    with pytest.raises(UserError) as err:
        parse_augmentations([{"crop_size": 32, "num_crops": 1, "colour_jitter": {}}])
    msg = str(err.value)
    assert "unknown key augmentations[0].colour_jitter" in msg
    assert "valid keys: crop_size, num_crops, rrc, color_jitter, grayscale" in msg
    assert "\n" not in msg


def test_unknown_sub_key():
    entries = [{"crop_size": 32, "num_crops": 1}, {"crop_size": 32, "num_crops": 1}]
    entries[1]["rrc"] = {"min_scale": 0.2}
    with pytest.raises(
        UserError,
        match=r"unknown key augmentations\[1\]\.rrc\.min_scale; valid "
        r"keys: enabled, crop_min_scale, crop_max_scale",
    ):
        parse_augmentations(entries)


def test_bad_probability():
    entry = {"crop_size": 32, "num_crops": 1, "horizontal_flip": {"prob": 1.5}}
    with pytest.raises(
        UserError, match=r"horizontal_flip\.prob must be a number in \[0\.0, 1\.0\]"
    ):
        parse_augmentations([entry])


def test_missing_crop_size():
    with pytest.raises(UserError, match=r"augmentations\[0\]\.crop_size is missing"):
        parse_augmentations([{"num_crops": 2}])


def test_bad_scale_order():
    entry = {"crop_size": 32, "num_crops": 1, "rrc": {"crop_min_scale": 0.9, "crop_max_scale": 0.5}}
    with pytest.raises(UserError, match="crop_min_scale <= crop_max_scale"):
        parse_augmentations([entry])


def test_empty_list():
    with pytest.raises(UserError, match="non-empty list"):
        parse_augmentations([])


def test_crop_counts_and_view_order():
    specs = parse_augmentations(
        [
            {"crop_size": 16, "num_crops": 1, "rrc": {"enabled": False}},
            {"crop_size": 8, "num_crops": 3},
            {"crop_size": 16, "num_crops": 1},
        ]
    )
    assert crop_counts(specs) == (2, 3)
    views = MultiViewTransform(specs, ZERO, ONE)(Image.new("RGB", (20, 20), (10, 20, 30)))
    assert [tuple(v.shape) for v in views] == [(3, 16, 16)] * 2 + [(3, 8, 8)] * 3


def test_two_large_two_small_shapes_and_dtype():
    specs = parse_augmentations(
        [{"crop_size": 32, "num_crops": 2}, {"crop_size": 12, "num_crops": 2}]
    )
    transform = MultiViewTransform(specs, *dataset_stats("cifar10"))
    assert (transform.num_large_crops, transform.num_small_crops, transform.num_crops) == (2, 2, 4)
    views = transform(Image.new("RGB", (40, 30), (200, 100, 50)))
    assert [tuple(v.shape) for v in views] == [(3, 32, 32)] * 2 + [(3, 12, 12)] * 2
    assert all(type(v) is torch.Tensor and v.dtype == torch.float32 for v in views)


def test_resize_when_rrc_disabled_keeps_aspect():
    (spec,) = parse_augmentations([{"crop_size": 16, "num_crops": 1, "rrc": {"enabled": False}}])
    out = build_view_transform(spec, ZERO, ONE)(Image.new("RGB", (40, 20)))
    assert tuple(out.shape) == (3, 16, 32)


@pytest.mark.parametrize("override", [False, True])
def test_normalisation_of_constant_image(override):
    value = (200, 100, 50)
    mean, std = dataset_stats("imagenet")
    entry = {"crop_size": 16, "num_crops": 1, "color_jitter": {"prob": 0.0}}
    if override:
        mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
        entry |= {"mean": list(mean), "std": list(std)}
    (spec,) = parse_augmentations([entry])
    out = build_view_transform(spec, *dataset_stats("imagenet"))(Image.new("RGB", (24, 24), value))
    expected = [(v / 255 - m) / s for v, m, s in zip(value, mean, std, strict=True)]
    for c in range(3):
        assert torch.allclose(out[c], torch.full((16, 16), expected[c]), atol=1e-5)


def test_dataset_stats():
    assert dataset_stats("cifar100") == ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
    assert dataset_stats("imagenet100") == dataset_stats("imagenet")
    assert dataset_stats("my_custom_set") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert dataset_stats("fashion_mnist")[0] == (0.2860,) * 3


def test_rrc_area_fraction_within_scale_bounds():
    lo, hi = 0.2, 0.6
    entry = {"crop_size": 8, "num_crops": 1, "rrc": {"crop_min_scale": lo, "crop_max_scale": hi}}
    (spec,) = parse_augmentations([entry])
    rrc = build_view_transform(spec, ZERO, ONE).transforms[0]
    assert isinstance(rrc, T.RandomResizedCrop)  # solo-learn's v1 transform
    assert rrc.interpolation == T.InterpolationMode.BICUBIC
    img = Image.new("RGB", (400, 400))
    torch.manual_seed(0)
    fractions = []
    for _ in range(2000):
        _, _, height, width = rrc.get_params(img, rrc.scale, rrc.ratio)
        fractions.append(height * width / 400**2)
    fractions_arr = np.array(fractions)
    # rounding the side lengths to whole pixels moves the area by < 1%
    assert fractions_arr.min() >= lo - 0.01 and fractions_arr.max() <= hi + 0.01
    assert fractions_arr.min() < lo + 0.02 and fractions_arr.max() > hi - 0.02


def _count(transform, img, test, n=2000):
    torch.manual_seed(0)
    return sum(bool(test(transform(img))) for _ in range(n))


def _within_binomial(count, n, p):
    return abs(count - n * p) <= 4.5 * math.sqrt(n * p * (1 - p))


def test_flip_rate_matches_probability():
    arr = np.zeros((8, 8, 3), dtype=np.uint8)
    arr[:, 4:] = 255  # dark left half, bright right half
    entry = {"crop_size": 8, "num_crops": 1, "rrc": {"enabled": False}}
    entry["horizontal_flip"] = {"prob": 0.3}
    (spec,) = parse_augmentations([entry])
    flipped = _count(
        build_view_transform(spec, ZERO, ONE), Image.fromarray(arr), lambda t: t[0, 0, 0] > 0.5
    )
    assert _within_binomial(flipped, 2000, 0.3), flipped


def test_jitter_application_rate_matches_probability():
    entry = {"crop_size": 8, "num_crops": 1, "rrc": {"enabled": False}}
    entry["color_jitter"] = {"prob": 0.4, "brightness": 0.5}
    (spec,) = parse_augmentations([entry])
    changed = _count(
        build_view_transform(spec, ZERO, ONE),
        Image.new("RGB", (8, 8), (200, 200, 200)),
        lambda t: not torch.allclose(t, torch.full_like(t, 200 / 255)),
    )
    assert _within_binomial(changed, 2000, 0.4), changed


def test_solarization_threshold_is_128():
    arr = np.array([[[127] * 3, [128] * 3, [250] * 3]], dtype=np.uint8)
    entry = {"crop_size": 1, "num_crops": 1, "rrc": {"enabled": False}}
    entry["solarization"] = {"prob": 1.0}
    (spec,) = parse_augmentations([entry])
    out = build_view_transform(spec, ZERO, ONE)(Image.fromarray(arr))
    assert (out[0, 0] * 255).round().tolist() == [127.0, 127.0, 5.0]


def test_blur_kernel_sizes():
    assert blur_kernel_size(224) == 23
    assert blur_kernel_size(160) == 17
    assert blur_kernel_size(96) == 13
    assert blur_kernel_size(32) == 13


def test_reference_blur_is_pils_with_sigma_in_solo_learns_range():
    entry = {"crop_size": 224, "num_crops": 1, "gaussian_blur": {"prob": 0.3}}
    (spec,) = parse_augmentations([entry])
    gates = [
        t for t in build_view_transform(spec, ZERO, ONE).transforms if isinstance(t, T.RandomApply)
    ]
    assert len(gates) == 1 and gates[0].p == 0.3
    (blur,) = gates[0].transforms
    assert isinstance(blur, PILGaussianBlur) and blur.sigma == (0.1, 2.0)
    assert repr(blur) == "PILGaussianBlur(sigma=(0.1, 2.0))"


def test_pil_blur_draws_sigma_from_torch_and_equals_pils_filter():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8))
    blur = PILGaussianBlur((0.1, 2.0))
    torch.manual_seed(5)
    sigma = torch.empty(1).uniform_(0.1, 2.0).item()
    torch.manual_seed(5)
    out = blur(img)
    want = img.filter(ImageFilter.GaussianBlur(radius=sigma))
    assert np.array_equal(np.asarray(out), np.asarray(want))
    random.seed(0)  # Python's RNG plays no part: only torch's seed fixes the view
    torch.manual_seed(5)
    again = np.asarray(blur(img))
    random.seed(1)
    torch.manual_seed(5)
    assert np.array_equal(again, np.asarray(blur(img)))
    assert not np.array_equal(np.asarray(blur(img)), again)  # the next draw is another sigma


def test_blurring_view_survives_pickling_for_dataloader_workers():
    entry = {"crop_size": 16, "num_crops": 1, "rrc": {"enabled": False}}
    entry["gaussian_blur"] = {"prob": 1.0}
    (spec,) = parse_augmentations([entry])
    view = build_view_transform(spec, ZERO, ONE)
    copy = pickle.loads(pickle.dumps(view))
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    torch.manual_seed(2)
    want = view(img)
    torch.manual_seed(2)
    got = copy(img)
    assert torch.equal(got, want)
    assert not torch.equal(got, v2.functional.to_dtype(v2.functional.to_image(img), scale=True))


def test_pil_blur_refuses_a_tensor():
    with pytest.raises(
        TypeError, match="blurs PIL images \\(place it before ToTensor\\); got Tensor"
    ):
        PILGaussianBlur()(torch.zeros(3, 8, 8))


def test_pil_blur_rejects_a_bad_sigma_range():
    with pytest.raises(
        ValueError, match=r"sigma must be \(lo, hi\) with 0 < lo <= hi, got \(2.0, 1.0\)"
    ):
        PILGaussianBlur((2.0, 1.0))


def test_blur_smooths_small_crops():
    arr = (np.indices((32, 32)).sum(0) % 2 * 255).astype(np.uint8)  # checkerboard
    img = Image.fromarray(np.stack([arr] * 3, -1))
    entry = {"crop_size": 32, "num_crops": 1, "rrc": {"enabled": False}}
    entry["gaussian_blur"] = {"prob": 1.0}
    (spec,) = parse_augmentations([entry])
    torch.manual_seed(0)
    out = build_view_transform(spec, ZERO, ONE)(img)
    assert out.std() < 0.4  # the checkerboard's std is 0.5
