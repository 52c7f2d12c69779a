# SPDX-License-Identifier: MIT
"""The batched small-image path: SubsetPixels, PixelBatchDataset and the data module around them.

SubsetPixels resolves unreadable entries exactly as SubsetReader does; PixelBatchDataset counts
reads as the per-image dataset does; raw batches augmented after transfer equal batches augmented
in the loader; the data module's batches are solo-learn's, replayed alike for the same epoch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from solo_diversity.data import (
    BatchAugment,
    MultiViewTransform,
    PretrainDataModule,
    PretrainDataset,
    ReadCounter,
    decode_image,
    parse_augmentations,
)
from solo_diversity.data.batch.pixels import RAW_KEYS, PixelBatchDataset, SubsetPixels
from solo_diversity.data.datasets import SubsetReader
from solo_diversity.data.sampler import EpochSampler, StepBatches
from solo_diversity.errors import UserError
from solo_diversity.index import Subset

ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
SPECS = parse_augmentations(
    [
        {
            "crop_size": 8,
            "num_crops": 2,
            "color_jitter": {"prob": 0.8, "brightness": 0.4, "contrast": 0.4, "hue": 0.1},
            "grayscale": {"prob": 0.2},
            "gaussian_blur": {"prob": 0.5},
            "horizontal_flip": {"prob": 0.5},
        },
        {"crop_size": 4, "num_crops": 1, "solarization": {"prob": 0.5}},
    ]
)


def _sized_layout(images, n_per_class):
    """Noise PNGs of sides 10..21 px in two classes (images of different sizes share a batch)."""
    return {
        f"class{c}": {
            f"img{i:02d}.png": images.encode(
                images.noise_rgb((10 + (3 * i + c) % 12, 10 + (5 * i + c) % 9), 50 * c + i), "PNG"
            )
            for i in range(n_per_class)
        }
        for c in range(2)
    }


def _with_unreadable(build_subset, images, n_per_class=12):
    """A subset with 3 undecodable files and a deleted one, ending in an unreadable entry."""
    layout = _sized_layout(images, n_per_class)
    layout["class1"] |= images.bad_files()
    index = build_subset(layout, seed=4).index
    index.file_path(2).unlink()
    unreadable = {
        p for p in range(len(index)) if p == 2 or index.entry_name(p).startswith("class1/bad_")
    }
    last = max(unreadable)  # a prefix ending there: its last entry wraps to the first
    return Subset(index, range(last + 1), (last + 1) / len(index), False), unreadable


def test_subset_pixels_resolve_entries_as_subset_reader(build_subset, images):
    subset, unreadable = _with_unreadable(build_subset, images)
    pixels = SubsetPixels(subset)
    reader = SubsetReader(subset, decode_image)
    n = len(subset)
    assert len(pixels) == n and len(unreadable) == 4
    assert pixels.pixels.dtype == torch.uint8 and pixels.pixels.is_shared()
    shapes = [
        np.asarray(decode_image(subset.index.read_bytes(p))).shape[:2]
        for p in subset.positions
        if p not in unreadable
    ]
    largest = tuple(int(v) for v in np.max(shapes, axis=0))
    assert tuple(pixels.pixels.shape) == (n, *largest, 3) and largest != shapes[0]
    skipped = 0
    for i in range(n):
        entry = reader.read(i)
        assert int(pixels.positions[i]) == entry.position
        assert int(pixels.targets[i]) == entry.target
        assert int(pixels.skipped[i]) == entry.skipped
        source = int(pixels.source[i])
        assert source == (i + entry.skipped) % n
        image = np.asarray(entry.value)
        height, width = image.shape[:2]
        assert pixels.sizes[source].tolist() == [height, width]
        stored = pixels.pixels[source].numpy()
        assert np.array_equal(stored[:height, :width], image)
        assert not stored[height:].any() and not stored[:, width:].any()  # zero padding
        skipped += entry.skipped
    assert int(pixels.skipped[n - 1]) >= 1 and int(pixels.source[n - 1]) < n - 1  # wrapped
    assert skipped == int(pixels.skipped.sum()) >= 4
    for i in range(n):
        position = int(subset.positions[i])
        if position not in unreadable:
            assert int(pixels.source[i]) == i and int(pixels.skipped[i]) == 0
            image = np.asarray(decode_image(subset.index.read_bytes(position)))
            height, width = image.shape[:2]
            assert np.array_equal(pixels.pixels[i, :height, :width].numpy(), image)


def test_subset_pixels_refuse_images_over_max_side(build_subset, images):
    layout = {
        "a": {f"{i}.png": images.encode(images.noise_rgb((16, 16), i), "PNG") for i in range(3)}
    }
    layout["a"]["wide.png"] = images.encode(images.noise_rgb((40, 20), 9), "PNG")
    with pytest.raises(UserError) as err:
        SubsetPixels(build_subset(layout), max_side=32)
    assert str(err.value) == (
        "data.augment_backend=batch and data.in_memory keep small images decoded in memory "
        "(sides up to 32 px); this subset has images up to 40x20: use data.augment_backend=fast "
        "with data.in_memory=false"
    )


def test_subset_pixels_none_readable(build_subset, images):
    subset = build_subset({"a": images.bad_files()})
    with pytest.raises(UserError) as err:
        SubsetPixels(subset)
    assert str(err.value) == (
        f"none of the 3 images in the subset of {subset.index.path} is readable"
    )


def test_pixel_batches_count_reads_as_the_per_image_dataset(build_subset, images):
    subset, _ = _with_unreadable(build_subset, images)
    batched = PixelBatchDataset(SubsetPixels(subset), BatchAugment(SPECS, ZERO, ONE), ReadCounter())
    single = PretrainDataset(subset, MultiViewTransform(SPECS, ZERO, ONE), ReadCounter())
    keys = StepBatches(EpochSampler(len(subset), batch_size=8, world_size=1, rank=0, seed=3))
    batches = 0
    for batch in keys:
        indexes, views, targets = batched.__getitems__(batch)
        items = [single[k] for k in batch]
        assert indexes.tolist() == [item[0] for item in items]
        assert targets.tolist() == [item[2] for item in items]
        assert [tuple(v.shape) for v in views] == [(8, 3, 8, 8)] * 2 + [(8, 3, 4, 4)]
        batches += 1
    assert batches == len(subset) // 8
    assert batched.counter.loaded == single.counter.loaded == 8 * batches
    assert batched.counter.bad == single.counter.bad > 0


def _module(subset, *, workers=0, on_device=False, seed=4):
    return PretrainDataModule(
        subset,
        BatchAugment(SPECS, ZERO, ONE),
        batch_size=8,
        num_workers=workers,
        seed=seed,
        augment_on_device=on_device,
    )


def test_raw_batches_augmented_after_transfer_equal_the_loaders(build_subset, images):
    subset, _ = _with_unreadable(build_subset, images)
    raw_dm, dm = _module(subset, on_device=True), _module(subset)
    keys = list(StepBatches(raw_dm.sampler))
    raw_batches, batches = list(raw_dm.train_dataloader()), list(dm.train_dataloader())
    assert len(raw_batches) == len(batches) == len(keys) == len(subset) // 8
    data = raw_dm.train_dataset.data
    for batch_keys, raw, want in zip(keys, raw_batches, batches, strict=True):
        assert isinstance(raw[1], dict) and set(raw[1]) == set(RAW_KEYS)
        entries = torch.tensor([k[0] for k in batch_keys])
        assert raw[1]["seeds"].tolist() == [k[1] for k in batch_keys]
        assert raw[1]["pixels"].dtype == torch.uint8
        assert torch.equal(raw[1]["pixels"], data.pixels[data.source[entries]])
        assert torch.equal(raw[1]["sizes"], data.sizes[data.source[entries]])
        got = raw_dm.on_after_batch_transfer(raw, 0)
        assert torch.equal(got[0], want[0]) and torch.equal(got[2], want[2])
        assert len(got[1]) == len(want[1]) == 3
        for g, w in zip(got[1], want[1], strict=True):
            assert g.dtype == w.dtype == torch.float32 and torch.equal(g, w)
    assert dm.on_after_batch_transfer(batches[0], 0) is batches[0]  # augmented already


def _epoch(loader, lent=None):
    """Clones of an epoch's batches; ``lent`` gets, per batch, whether it was a ring slot."""
    out = []
    for b in loader:
        if lent is not None:
            ptrs = [v.data_ptr() for v in b[1]]
            lent.append(any(ptrs == [t.data_ptr() for t in s] for s in loader.ring.slots))
        out.append([b[0].clone(), [v.clone() for v in b[1]], b[2].clone()])
    return out


def _by_index(batches):
    return {
        int(index): [v[row] for v in views]
        for indexes, views, _ in batches
        for row, index in enumerate(indexes)
    }


def test_batch_module_with_workers(build_subset, images):
    subset = build_subset(_sized_layout(images, 16), seed=6)  # 32 entries, 4 batches of 8
    dm = _module(subset, workers=2, seed=9)
    loader = dm.train_dataloader()
    assert loader.ring is not None
    lent = []
    first = _epoch(loader, lent)
    assert lent == [True] * 4  # the workers augmented into ring slots
    dm.sampler.set_epoch(1)
    second = _epoch(loader)
    dm.sampler.set_epoch(0)
    again = _epoch(loader)
    in_main = _epoch(_module(subset, workers=0, seed=9).train_dataloader())
    assert len(first) == 4
    labels = subset.index.labels()
    for indexes, views, targets in first + second:
        assert indexes.dtype == torch.int64 and tuple(indexes.shape) == (8,)
        assert targets.dtype == torch.int64 and tuple(targets.shape) == (8,)
        assert [(v.dtype, tuple(v.shape)) for v in views] == [(torch.float32, (8, 3, 8, 8))] * 2 + [
            (torch.float32, (8, 3, 4, 4))
        ]
        assert targets.tolist() == labels[indexes.numpy()].tolist()
    assert sorted(_by_index(first)) == list(range(32)) == sorted(_by_index(second))
    for replay in (again, in_main):
        for got, want in zip(replay, first, strict=True):
            assert torch.equal(got[0], want[0]) and torch.equal(got[2], want[2])
            assert all(torch.equal(g, w) for g, w in zip(got[1], want[1], strict=True))
    one, two = _by_index(first), _by_index(second)
    for index in range(32):  # the same image, other sample seeds: other views
        assert not any(torch.equal(a, b) for a, b in zip(one[index], two[index], strict=True))
