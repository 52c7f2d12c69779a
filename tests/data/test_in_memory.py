# SPDX-License-Identifier: MIT
"""``data.in_memory``: the per-image backends reading a small subset decoded once into memory.

From memory a key gives exactly the views, positions, targets and read counts the streaming
dataset gives (the same decoded PNG pixels, the same per-sample draws, the same substitution of
unreadable entries); ``auto`` picks memory for small images only.
"""

from __future__ import annotations

import pytest
import torch

from solo_diversity.data import PretrainDataModule, PretrainDataset, ReadCounter
from solo_diversity.data.batch.pixels import (
    PixelImageDataset,
    SubsetPixels,
    in_memory_mode,
    memory_pixels,
)
from solo_diversity.errors import UserError
from tests.data.batch_inputs import TRANSFORMS, subset_with_unreadable


@pytest.mark.parametrize("backend", sorted(TRANSFORMS))
def test_memory_gives_the_streaming_views(build_subset, images, noise_layout, backend):
    subset, unreadable = subset_with_unreadable(build_subset, images, noise_layout)
    n = len(subset)
    keys = [((5 * i + 1) % n, 77 + 31 * i) for i in range(n)] + [(3, 5), (3, 6)]
    streaming = PretrainDataset(subset, TRANSFORMS[backend](), ReadCounter())
    memory = PixelImageDataset(SubsetPixels(subset), TRANSFORMS[backend](), ReadCounter())
    assert len(memory) == len(streaming) == n
    got, want = memory.__getitems__(keys), streaming.__getitems__(keys)
    assert got[0].tolist() == want[0].tolist() and got[2].tolist() == want[2].tolist()
    assert not set(got[0].tolist()) & unreadable
    for g, w in zip(got[1], want[1], strict=True):
        assert torch.equal(g, w)
    assert not torch.equal(got[1][0][-1], got[1][0][-2])  # one entry, two seeds, two views
    assert (memory.counter.loaded, memory.counter.bad) == (
        streaming.counter.loaded,
        streaming.counter.bad,
    )
    assert memory.counter.loaded == len(keys) and memory.counter.bad >= 4
    one = memory[keys[4]]
    assert one[0] == got[0][4].item() and torch.equal(one[1][0], got[1][0][4])


def test_auto_keeps_small_images_in_memory_and_streams_large_ones(build_subset, noise_layout):
    small = build_subset(noise_layout(2, 4, (32, 32)), seed=1)
    large = build_subset(noise_layout(2, 4, (96, 80)), seed=1)
    assert isinstance(memory_pixels(small, "auto"), SubsetPixels)
    assert memory_pixels(large, "auto") is None
    assert memory_pixels(small, False) is None
    assert isinstance(memory_pixels(large, True), SubsetPixels)  # up to 256 px when asked
    common = dict(batch_size=4, num_workers=0, seed=0)
    transform = TRANSFORMS["torchvision"]()
    auto = PretrainDataModule(small, transform, in_memory="auto", **common)
    streamed = PretrainDataModule(large, transform, in_memory="auto", **common)
    default = PretrainDataModule(small, transform, **common)
    assert isinstance(auto.train_dataset, PixelImageDataset)
    assert isinstance(streamed.train_dataset, PretrainDataset)
    assert isinstance(default.train_dataset, PretrainDataset)  # the library default streams
    a, b = next(iter(auto.train_dataloader())), next(iter(default.train_dataloader()))
    assert a[0].tolist() == b[0].tolist()
    assert all(torch.equal(x, y) for x, y in zip(a[1], b[1], strict=True))


def test_in_memory_settings_are_checked_in_one_line(build_subset, noise_layout):
    assert [in_memory_mode(v) for v in (True, False, "AUTO", "false")] == [
        "true",
        "false",
        "auto",
        "false",
    ]
    valid = "valid: auto, true, false"
    with pytest.raises(UserError, match=rf"^unknown data.in_memory 'yes'; {valid}$"):
        in_memory_mode("yes")
    huge = build_subset(noise_layout(1, 2, (300, 20)), seed=1)
    too_big = r"sides up to 256 px\); this subset has images up to 300x20"
    with pytest.raises(UserError, match=too_big):
        memory_pixels(huge, "true")
    with pytest.raises(UserError, match=r"^4 images of up to 32x32 take 0.0 GiB decoded"):
        SubsetPixels(build_subset(noise_layout(2, 2, (32, 32)), seed=1), max_bytes=1000)
