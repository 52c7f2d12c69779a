# SPDX-License-Identifier: MIT
"""The fast CPU path draws the reference (torchvision) path's augmentation distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from solo_diversity.data import (
    FastMultiView,
    MultiViewTransform,
    check_backend,
    parse_augmentations,
    rrc_box,
)
from solo_diversity.data.batch.color import rgb_hue_shift
from solo_diversity.errors import UserError
from tests.data.view_paths import MEAN, STD, H, W, box_stats, draw, gradient, paths


def test_crop_scale_and_flip_rate_match_the_reference() -> None:
    ref, fast = paths(rrc={"crop_min_scale": 0.2}, horizontal_flip={"prob": 0.5})
    img = gradient()
    area_ref, flip_ref = box_stats(draw(ref, img, 1500, 0))
    area_fast, flip_fast = box_stats(draw(fast, img, 1500, 1))
    # Area fraction ~ U[0.2, 1] before the fit test: the same quantiles on both paths.
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert abs(np.quantile(area_ref, q) - np.quantile(area_fast, q)) < 0.04, q
    assert 0.2 * 0.8 < area_fast.min() and area_fast.max() <= 1.0
    assert abs(flip_ref.mean() - 0.5) < 0.045 and abs(flip_fast.mean() - 0.5) < 0.045


def test_rrc_box_follows_torchvisions_law() -> None:
    from torchvision.transforms import v2

    torch.manual_seed(0)
    ours = np.array([rrc_box(H, W, (0.08, 1.0)) for _ in range(4000)], dtype=float)
    theirs = np.array(
        [
            v2.RandomResizedCrop.get_params(torch.zeros(1, H, W), [0.08, 1.0], [3 / 4, 4 / 3])
            for _ in range(4000)
        ],
        dtype=float,
    )
    for stats in (ours, theirs):  # every box fits inside the image
        assert (stats[:, 0] + stats[:, 2] <= H).all() and (stats[:, 1] + stats[:, 3] <= W).all()
    area_ours = ours[:, 2] * ours[:, 3] / (H * W)
    area_theirs = theirs[:, 2] * theirs[:, 3] / (H * W)
    assert abs(area_ours.mean() - area_theirs.mean()) < 0.02
    aspect_ours, aspect_theirs = ours[:, 3] / ours[:, 2], theirs[:, 3] / theirs[:, 2]
    assert abs(np.median(aspect_ours) - np.median(aspect_theirs)) < 0.05


def _changed(views: torch.Tensor, plain: torch.Tensor) -> np.ndarray:
    return ((views - plain).abs().amax(dim=(1, 2, 3)) > 1.5 / 255).numpy()


@pytest.mark.parametrize("block", ["brightness", "contrast", "saturation", "hue"])
def test_colour_jitter_application_rate_matches(block: str) -> None:
    jitter = {"prob": 0.6, block: 0.4 if block != "hue" else 0.2}
    ref, fast = paths(rrc={"crop_min_scale": 1.0}, color_jitter=jitter)
    # A smooth colour ramp: every jitter op changes it unless its factor is ~1.
    rgb = np.stack(np.meshgrid(np.linspace(40, 220, 16), np.linspace(60, 200, 16)), -1)
    img = Image.fromarray(np.dstack([rgb, np.full((16, 16), 90)]).astype(np.uint8), "RGB")
    plain = paths(rrc={"crop_min_scale": 1.0})[0](img)[0]
    rate_ref = _changed(draw(ref, img, 800, 0), plain).mean()
    rate_fast = _changed(draw(fast, img, 800, 1), plain).mean()
    assert abs(rate_ref - rate_fast) < 0.06
    assert 0.5 < rate_fast <= 0.63  # prob 0.6, less the draws whose factor is ~1


def test_grayscale_and_solarization_rates_match() -> None:
    img = Image.new("RGB", (16, 16), (200, 60, 30))
    for entry, detect in (
        ({"grayscale": {"prob": 0.3}}, lambda v: (v[:, 0] == v[:, 1]).flatten(1).all(1)),
        ({"solarization": {"prob": 0.3}}, lambda v: v[:, 0, 0, 0] < 0.5),  # 200 -> 55
    ):
        ref, fast = paths(rrc={"crop_min_scale": 1.0}, **entry)
        rate_ref = detect(draw(ref, img, 800, 0)).float().mean().item()
        rate_fast = detect(draw(fast, img, 800, 1)).float().mean().item()
        assert abs(rate_ref - 0.3) < 0.05 and abs(rate_fast - 0.3) < 0.05, entry


def test_hue_shift_distribution_matches() -> None:
    img = Image.new("RGB", (16, 16), (200, 60, 30))
    ref, fast = paths(rrc={"crop_min_scale": 1.0}, color_jitter={"prob": 1.0, "hue": 0.2})

    def hues(views: torch.Tensor) -> np.ndarray:
        pixels = (views[:, :, 8, 8].numpy() * 255).round().astype(np.uint8)[None]
        return np.asarray(Image.fromarray(pixels, "RGB").convert("HSV"))[0, :, 0].astype(float)

    h_ref, h_fast = hues(draw(ref, img, 600, 0)), hues(draw(fast, img, 600, 1))
    for q in (0.1, 0.5, 0.9):
        assert abs(np.quantile(h_ref, q) - np.quantile(h_fast, q)) < 6, q  # 255 = one turn


def test_deterministic_view_equals_reference_and_normalises() -> None:
    specs = parse_augmentations([{"crop_size": 16, "num_crops": 2, "rrc": {"enabled": False}}])
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    img = Image.fromarray(np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3), "RGB")
    ref = MultiViewTransform(specs, mean, std)(img)
    fast = FastMultiView(specs, mean, std)(img)
    assert len(fast) == 2 and fast[0].shape == (3, 16, 16) and fast[0].dtype == torch.float32
    expected = (
        torch.from_numpy(np.array(img)).permute(2, 0, 1) / 255 - torch.tensor(mean).view(3, 1, 1)
    ) / torch.tensor(std).view(3, 1, 1)
    torch.testing.assert_close(fast[1], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(fast[0], ref[0], atol=1e-5, rtol=0)


def test_closed_form_hue_equals_torchvision() -> None:
    from torchvision.transforms.v2 import functional as tvf

    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    shifts = torch.tensor([-0.5, -0.1, 0.2, 0.45])
    expected = torch.stack([tvf.adjust_hue(x[i], float(shifts[i])) for i in range(4)])
    torch.testing.assert_close(rgb_hue_shift(x, shifts), expected, atol=1e-5, rtol=0)


def test_unknown_backend_is_a_user_error() -> None:
    assert check_backend("fast") == "fast"
    message = "unknown data.augment_backend 'dali'; valid: fast, torchvision"
    with pytest.raises(UserError, match=message):
        check_backend("dali")


def _photo(h: int = 37, w: int = 53) -> Image.Image:
    """Smooth colours with texture: every op (and the resize) changes it."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.BICUBIC))
    noise = rng.integers(-20, 21, base.shape)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def test_hwc_resize_has_torchvisions_pixels() -> None:
    from torchvision.transforms.v2 import functional as tvf

    from solo_diversity.data.fast_cpu import image_to_hwc, resize_hwc

    img = _photo()
    hwc, chw = image_to_hwc(img), torch.from_numpy(np.array(img)).permute(2, 0, 1)
    bicubic = tvf.InterpolationMode.BICUBIC
    for top, left, h, w in ((0, 0, 37, 53), (3, 5, 20, 11), (36, 0, 1, 53), (2, 7, 9, 40)):
        for size in ((16, 16), (50, 70), (h, w)):
            ours = resize_hwc(hwc[top : top + h, left : left + w], *size)
            ref = tvf.resized_crop(chw, top, left, h, w, list(size), interpolation=bicubic)
            assert ours.flags.c_contiguous and ours.flags.writeable
            np.testing.assert_array_equal(ours, ref.permute(1, 2, 0).numpy())


def test_solarize_equalize_flip_and_grey_equal_the_reference() -> None:
    img = _photo()
    for entry in (
        {"solarization": {"prob": 1.0}, "horizontal_flip": {"prob": 1.0}},
        {"solarization": {"prob": 1.0}, "equalization": {"prob": 1.0}},
        {"equalization": {"prob": 1.0}, "horizontal_flip": {"prob": 1.0}},
        {"grayscale": {"prob": 1.0}, "horizontal_flip": {"prob": 1.0}},
    ):
        specs = parse_augmentations(
            [{"crop_size": 37, "num_crops": 1, "rrc": {"enabled": False}, **entry}]
        )
        ref = MultiViewTransform(specs, MEAN, STD)(img)[0]
        fast = FastMultiView(specs, MEAN, STD)(img)[0]
        assert fast.is_contiguous() and fast.shape == ref.shape == (3, 37, 53)
        # Grey: PIL's and OpenCV's fixed-point luma may round apart by one level.
        tol = 1.01 / 255 if "grayscale" in entry else 1e-6
        torch.testing.assert_close(fast, ref, atol=tol, rtol=0, msg=str(entry))


def test_float_fallback_without_opencv_follows_the_same_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from solo_diversity.data import fast_cpu

    specs = parse_augmentations(
        [
            {
                "crop_size": 24,
                "num_crops": 2,
                "color_jitter": {
                    "prob": 0.8,
                    "brightness": 0.4,
                    "contrast": 0.4,
                    "saturation": 0.4,
                    "hue": 0.1,
                },
                "grayscale": {"prob": 0.2},
                "gaussian_blur": {"prob": 0.5},
                "solarization": {"prob": 0.2},
                "horizontal_flip": {"prob": 0.5},
            }
        ]
    )
    img = _photo()
    with_cv2 = draw(FastMultiView(specs, MEAN, STD), img, 40, 3)
    monkeypatch.setattr(fast_cpu, "_cv2", lambda: None)
    without = draw(FastMultiView(specs, MEAN, STD), img, 40, 3)
    # Same draws, so the same crops and ops; only 8-bit vs float arithmetic differs.
    assert (with_cv2 - without).abs().mean() < 2 / 255
