# SPDX-License-Identifier: MIT
"""The DALI data path on the CPU: outputs, index mapping, sharding, epochs, bad-image parity."""

from __future__ import annotations

import itertools
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from solo_diversity.data import (
    ClassificationDataset,
    DaliPretrainDataModule,
    PretrainDataset,
    ScreenCache,
    eval_transform,
    parse_augmentations,
    probe_batches,
)
from solo_diversity.data.dali.feed import BAD, NATIVE, TRANSCODE
from solo_diversity.errors import UserError
from tests.data.view_paths import box_stats, draw, gradient, paths

MEAN, STD = (0.25, 0.5, 0.75), (0.5, 0.25, 0.125)
PLAIN = {"crop_size": 8, "num_crops": 2, "rrc": {"crop_min_scale": 0.3}}


def grey_layout(images, n_classes=2, n_per_class=8, fmt="PNG"):
    """Constant images whose grey level encodes (class, i): level = 10 * (8 * c + i) + 5."""
    return {
        f"class{c}": {
            f"img{i:02d}.{fmt.lower()}": images.encode(
                Image.new("RGB", (12, 10), (10 * (8 * c + i) + 5,) * 3), fmt
            )
            for i in range(n_per_class)
        }
        for c in range(n_classes)
    }


def dali_dm(subset, tmp_path, augs=(PLAIN,), **kwargs):
    kwargs = {"batch_size": 4, "num_workers": 0, "seed": 1, **kwargs}
    return DaliPretrainDataModule(
        subset,
        parse_augmentations(list(augs)),
        MEAN,
        STD,
        screen_cache=tmp_path / "screen.u8",
        **kwargs,
    )


def epoch_batches(dm, epoch):
    dm.sampler.set_epoch(epoch)
    return list(dm.train_dataloader())


def level(view):
    """Grey level (0..255) of a normalised constant view, from its first channel."""
    return view[0].mean().item() * STD[0] * 255 + MEAN[0] * 255


def test_batches_have_solo_learn_layout_dtypes_and_normalisation(build_subset, images, tmp_path):
    subset = build_subset(grey_layout(images), seed=2)
    small = {**PLAIN, "crop_size": 4, "num_crops": 3}
    dm = dali_dm(subset, tmp_path, augs=(PLAIN, small))
    batches = epoch_batches(dm, 0)
    assert len(batches) == len(dm.train_dataloader()) == 16 // 4
    indexes, views, targets = batches[0]
    assert indexes.dtype == targets.dtype == torch.int64 and indexes.shape == targets.shape == (4,)
    assert [tuple(v.shape) for v in views] == [(4, 3, 8, 8)] * 2 + [(4, 3, 4, 4)] * 3
    assert all(v.dtype == torch.float32 for v in views)
    # Constant images stay constant under crop/resize; each channel is (x / 255 - mean) / std.
    grey = torch.tensor([level(views[0][k]) for k in range(4)])
    for c in range(3):
        expected = (grey / 255 - MEAN[c]) / STD[c]
        got = views[0][:, c].mean(dim=(1, 2))
        assert torch.allclose(got, expected, atol=1e-4)


def test_indexes_and_pixels_map_back_to_their_index_entries(build_subset, images, tmp_path):
    subset = build_subset(grey_layout(images), seed=5)
    dm = dali_dm(subset, tmp_path)
    for epoch in (0, 1):
        batches = epoch_batches(dm, epoch)
        positions = torch.cat([b[0] for b in batches]).tolist()
        expected = [int(subset.positions[i]) for i in dm.sampler.indices(epoch)]
        assert positions == expected
        for indexes, views, targets in batches:
            for k, position in enumerate(indexes.tolist()):
                name = subset.index.entry_name(position)  # class{c}/img{i}.png
                c, i = int(name[5]), int(name.split("img")[1][:2])
                assert targets[k].item() == c == subset.index.labels([position])[0]
                assert abs(level(views[0][k]) - (10 * (8 * c + i) + 5)) < 0.5
    assert dm.loaded_images == 32 and dm.bad_images == 0


def test_two_ranks_are_disjoint_cover_the_subset_and_reshuffle(build_subset, images, tmp_path):
    subset = build_subset(grey_layout(images), seed=3)
    seen = {}
    for rank in (0, 1):
        dm = dali_dm(subset, tmp_path)
        dm.rank, dm.world_size = rank, 2
        dm.sampler = dm._make_sampler()
        seen[rank] = [torch.cat([b[0] for b in epoch_batches(dm, e)]).tolist() for e in (0, 1)]
    for epoch in (0, 1):
        a, b = seen[0][epoch], seen[1][epoch]
        assert len(a) == len(b) == 8 and not set(a) & set(b)
        assert sorted(a + b) == sorted(int(p) for p in subset.positions)
    assert seen[0][0] != seen[0][1]


def test_a_resumed_or_abandoned_epoch_restarts_on_the_sampler_order(build_subset, images, tmp_path):
    subset = build_subset(grey_layout(images), seed=4)
    dm = dali_dm(subset, tmp_path)
    dm.sampler.set_epoch(3)  # a resume: DALI's first epoch is sampler epoch 3
    next(iter(dm.train_dataloader()))  # abandoned after one batch (max_steps)
    for epoch in (4, 5):  # rebuilt once, then continued
        positions = torch.cat([b[0] for b in epoch_batches(dm, epoch)]).tolist()
        assert positions == [int(subset.positions[i]) for i in dm.sampler.indices(epoch)]


def test_epochs_read_as_lightning_reads_them_keep_one_pipeline(build_subset, images, tmp_path):
    subset = build_subset(grey_layout(images), seed=8)
    dm = dali_dm(subset, tmp_path)
    loader = dm.train_dataloader()
    for epoch in range(3):  # Lightning takes len(loader) batches and never asks for one more
        dm.sampler.set_epoch(epoch)
        batches = list(itertools.islice(iter(loader), len(loader)))
        positions = torch.cat([b[0] for b in batches]).tolist()
        assert positions == [int(subset.positions[i]) for i in dm.sampler.indices(epoch)]
    assert dm._epochs.builds == 1


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (no real pixel data): a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bad_corpus(images):
    """Every kind of awkward file: good odd modes, and bad ones (which must be skipped)."""
    rng = np.random.default_rng(0)
    scan = bytearray(images.encode(images.noise_rgb((64, 48), 3), "JPEG", quality=90))
    for k in rng.integers(700, len(scan) - 2, size=12):
        scan[k] ^= 0x5A  # flipped bits inside the entropy-coded data
    good = images.good_files() | {
        "gif.gif": images.encode(images.noise_rgb((16, 16), 4), "GIF"),
        "grey16.png": images.encode(Image.new("I;16", (16, 16), 3000), "PNG"),
        "big_ok.jpg": images.encode(images.noise_rgb((300, 200), 5), "JPEG"),
        "scan_ok.jpg": bytes(scan),  # libjpeg warns ("corrupt data") but decodes: kept
    }
    bad = images.bad_files() | {
        "bad_bomb.png": huge_png_header(20_000, 20_000),
        "bad_half.jpg": images.encode(images.noise_rgb((64, 48), 6), "JPEG")[:300],
    }
    return good, bad


def test_bad_images_are_skipped_and_counted_alike_on_both_paths(build_subset, images, tmp_path):
    good, bad = bad_corpus(images)
    subset = build_subset({"a": good, "b": bad}, seed=7)  # a paths index keeps the empty file
    n = len(subset)
    assert n == 13
    dm = dali_dm(subset, tmp_path, batch_size=n)
    batches = epoch_batches(dm, 0)
    dali_positions = torch.cat([b[0] for b in batches]).tolist()

    torchvision = PretrainDataset(subset, lambda img: [])
    tv_positions = [torchvision[i][0] for i in dm.sampler.indices(0)]
    assert dali_positions == tv_positions
    names = {subset.index.entry_name(p) for p in dali_positions}
    assert not any("bad_" in name for name in names)
    assert dm.bad_images == torchvision.counter.bad > 0
    assert dm.loaded_images == torchvision.counter.loaded == n
    verdicts = ScreenCache(tmp_path / "screen.u8", n).verdicts
    for position in range(n):
        name = subset.index.entry_name(position)
        want = (
            BAD
            if "bad_" in name
            else NATIVE
            if name.endswith(("rgb.jpg", "_ok.jpg"))
            else (TRANSCODE if not name.endswith("gray.png") else NATIVE)
        )
        assert verdicts[position] == want, name


def test_probe_batches_equal_the_torchvision_eval_view(build_subset, images, tmp_path):
    good, bad = bad_corpus(images)
    del good["big_ok.jpg"], good["scan_ok.jpg"]
    subset = build_subset({"a": good, "b": bad}, seed=1, embed=True)
    got = list(
        probe_batches(
            subset,
            16,
            MEAN,
            STD,
            train=False,
            crop_fraction=1.0,
            batch_size=4,
            num_workers=0,
            screen_cache=tmp_path / "s.u8",
        )
    )
    x = torch.cat([g[0] for g in got])
    y = torch.cat([g[1] for g in got])
    ref = ClassificationDataset(subset, eval_transform(16, MEAN, STD, crop_fraction=1.0))
    assert x.shape == (len(subset), 3, 16, 16)
    for k in range(len(subset)):
        image, target = ref[k]
        assert y[k].item() == target
        # same pixels up to the JPEG decoders' rounding: within 3 grey levels everywhere
        assert (x[k] - image).abs().max().item() * min(STD) * 255 < 3.5


def test_parallel_feed_workers_deliver_the_same_epoch_and_views(
    build_subset, noise_layout, tmp_path
):
    subset = build_subset(noise_layout(2, 8), seed=6)  # noise: every box and flip shows
    augs = ({**PLAIN, "horizontal_flip": {"prob": 0.5}},)
    serial = epoch_batches(dali_dm(subset, tmp_path, augs=augs), 0)
    parallel = dali_dm(subset, tmp_path, augs=augs, num_workers=2)
    for (i, views, _), (pi, pviews, _) in zip(serial, epoch_batches(parallel, 0), strict=True):
        assert torch.equal(pi, i)
        assert all(torch.equal(a, b) for a, b in zip(pviews, views, strict=True))
    parallel.teardown("fit")


def test_unknown_dali_device_is_a_user_error(build_subset, images, tmp_path):
    subset = build_subset(grey_layout(images, 1, 4))
    with pytest.raises(UserError, match="unknown dali.device 'tpu'; valid: cpu, gpu"):
        dali_dm(subset, tmp_path, device="tpu")


def dali_views(build_subset, images, tmp_path, epochs, **entry):
    """First views of ``epochs`` x 32 draws of the gradient image through a DALI pipeline."""
    png = images.encode(gradient(), "PNG")
    subset = build_subset({"a": {f"g{i:02d}.png": png for i in range(32)}})
    spec = {"crop_size": 16, "num_crops": 1, "rrc": {"crop_min_scale": 0.2}, **entry}
    dm = DaliPretrainDataModule(
        subset,
        parse_augmentations([spec]),
        (0.0,) * 3,
        (1.0,) * 3,
        batch_size=32,
        num_workers=0,
        seed=0,
        screen_cache=tmp_path / "grad.u8",
    )
    return torch.cat([b[1][0] for e in range(epochs) for b in epoch_batches(dm, e)])


def test_dali_draws_the_reference_crop_scale_and_flip_rate(build_subset, images, tmp_path):
    views = dali_views(build_subset, images, tmp_path, 24, horizontal_flip={"prob": 0.5})
    area, flipped = box_stats(views)
    reference, _ = paths(rrc={"crop_min_scale": 0.2})
    area_ref, _ = box_stats(draw(reference, gradient(), 1500, 0))
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert abs(np.quantile(area, q) - np.quantile(area_ref, q)) < 0.06, q
    assert abs(flipped.mean() - 0.5) < 0.06


def test_dali_applies_jitter_and_grayscale_at_their_rates(build_subset, images, tmp_path):
    views = dali_views(
        build_subset,
        images,
        tmp_path,
        24,
        grayscale={"prob": 0.2},
        color_jitter={"prob": 0.8, "brightness": 0.4},
    )
    grey = (views.amax(1) - views.amin(1)).amax((1, 2)) < 2 / 255
    # B is 128 everywhere: a jittered view's blue level moves (|factor - 1| < 0.004 has p ~ 1%).
    jittered = (views[:, 2].mean((1, 2)) - 128 / 255).abs() > 0.5 / 255
    assert abs(grey.float().mean().item() - 0.2) < 0.06
    assert abs(jittered.float().mean().item() - 0.8) < 0.06


def test_resolve_device_follows_the_model_and_refuses_a_missing_gpu():
    from solo_diversity.data import resolve_device

    assert resolve_device("auto", on_gpu=False) == "cpu"
    assert resolve_device("auto", on_gpu=True) == "gpu"
    assert resolve_device("cpu", on_gpu=True) == "cpu"
    with pytest.raises(UserError, match="unknown dali.device 'npu'; valid: cpu, gpu"):
        resolve_device("npu", on_gpu=False)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="dali.device=gpu but no GPU is visible"):
            resolve_device("gpu", on_gpu=False)
