# SPDX-License-Identifier: MIT
"""BatchRing: slots handed out once, lent as tensors over their memory, freed with the last one.

Through a real DataLoader (two workers) the ring's batches equal, bit for bit, those of the same
module without a ring, and a batch held by the caller keeps its values while the ring goes round.
"""

from __future__ import annotations

import torch

from solo_diversity.data import FastMultiView, PretrainDataModule, parse_augmentations
from solo_diversity.data.batch.ring import BatchRing, view_shapes

ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
WAIT = 0.2  # seconds an acquire waits where no slot may come back
SPECS = [
    {
        "crop_size": 16,
        "num_crops": 2,
        "color_jitter": {"prob": 0.8, "brightness": 0.4, "contrast": 0.4, "hue": 0.1},
        "grayscale": {"prob": 0.2},
        "gaussian_blur": {"prob": 0.5},
        "horizontal_flip": {"prob": 0.5},
    },
    {"crop_size": 8, "num_crops": 2, "solarization": {"prob": 0.3}},
]


def _assert_over(slot, lent):
    """The lent tensors are the slot's memory: what a worker writes there, they show."""
    for view, slot_tensor in zip(lent, slot, strict=True):
        assert view.data_ptr() == slot_tensor.data_ptr()
        slot_tensor.fill_(7.0)
        assert bool((view == 7.0).all())


def test_slots_go_back_only_when_every_tensor_over_them_is_freed():
    ring = BatchRing(4, [(3, 8, 8), (3, 4, 4)], slots=2)
    first, other = ring.acquire(WAIT), ring.acquire(WAIT)
    assert sorted([first, other]) == [0, 1]
    assert ring.acquire(WAIT) is None  # both slots out
    large, small = ring.lend(first)
    assert [tuple(v.shape) for v in (large, small)] == [(4, 3, 8, 8), (4, 3, 4, 4)]
    assert [v.dtype for v in (large, small)] == [torch.float32, torch.float32]
    _assert_over(ring.slots[first], [large, small])
    tail = small[1:]
    del large
    assert ring.acquire(WAIT) is None  # one view still lent
    del small
    assert ring.acquire(WAIT) is None  # a slice keeps the slot's memory alive
    assert float(tail.sum()) == 7.0 * 3 * 3 * 4 * 4
    del tail
    assert ring.acquire(1.0) == first
    assert ring.acquire(WAIT) is None  # the other slot was never lent back


def test_view_shapes_large_crops_first_or_none_without_rrc():
    specs = parse_augmentations(
        [{"crop_size": 224, "num_crops": 2}, {"crop_size": 96, "num_crops": 6}]
    )
    assert view_shapes(specs) == [(3, 224, 224)] * 2 + [(3, 96, 96)] * 6
    assert BatchRing.slot_bytes(8, view_shapes(specs)) == 4 * 8 * 3 * (2 * 224**2 + 6 * 96**2)
    no_rrc = parse_augmentations(
        [
            {"crop_size": 224, "num_crops": 2},
            {"crop_size": 96, "num_crops": 6, "rrc": {"enabled": False}},
        ]
    )
    assert view_shapes(no_rrc) is None


def _jpeg_subset(build_subset, images, n, bad=False):
    """n noise JPEGs (24 x 20) in two classes, plus the 3 undecodable files when ``bad``."""
    layout = {
        f"class{c}": {
            f"img{i:02d}.jpg": images.encode(images.noise_rgb((24, 20), 100 * c + i), "JPEG")
            for i in range(n // 2)
        }
        for c in range(2)
    }
    if bad:
        layout["class1"] |= images.bad_files()
    return build_subset(layout, seed=5)


def _module(subset, workers, pin_memory=False):
    transform = FastMultiView(parse_augmentations(SPECS), ZERO, ONE)
    return PretrainDataModule(
        subset, transform, batch_size=8, num_workers=workers, seed=11, pin_memory=pin_memory
    )


def _slot_of(batch, ring):
    """The ring slot whose memory the batch's views are, or None (a batch allocated apart)."""
    ptrs = [v.data_ptr() for v in batch[1]]
    for slot, tensors in enumerate(ring.slots):
        if ptrs == [t.data_ptr() for t in tensors]:
            return slot
    return None


def _clone(batch):
    return [batch[0].clone(), [v.clone() for v in batch[1]], batch[2].clone()]


def _assert_same(got, want):
    assert torch.equal(got[0], want[0])
    assert torch.equal(got[2], want[2])
    assert len(got[1]) == len(want[1])
    for a, b in zip(got[1], want[1], strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)


def test_ring_batches_equal_batches_without_ring(build_subset, images):
    subset = _jpeg_subset(build_subset, images, 32, bad=True)  # 35 entries: 4 batches of 8
    ringed_dm, plain_dm = _module(subset, workers=2), _module(subset, workers=0)
    ringed, plain = ringed_dm.train_dataloader(), plain_dm.train_dataloader()
    assert ringed.ring is not None and plain.ring is None
    assert _module(subset, workers=2, pin_memory=True)._ring() is None
    got = [_clone(b) for b in ringed if _slot_of(b, ringed.ring) is not None]
    want = [_clone(b) for b in plain]
    assert len(got) == len(want) == 4  # every batch came through a ring slot
    for g, w in zip(got, want, strict=True):
        _assert_same(g, w)
    assert [tuple(v.shape) for v in got[0][1]] == [(8, 3, 16, 16)] * 2 + [(8, 3, 8, 8)] * 2
    counts = (ringed_dm.loaded_images, ringed_dm.bad_images)
    assert counts == (plain_dm.loaded_images, plain_dm.bad_images)
    assert counts[0] == 32 and counts[1] >= 1  # an unreadable entry was substituted in a slot


def test_a_held_batch_keeps_its_slot(build_subset, images):
    subset = _jpeg_subset(build_subset, images, 64)  # 8 batches an epoch; the ring has 7 slots
    dm = _module(subset, workers=2)
    loader = dm.train_dataloader()
    ring = loader.ring
    assert len(ring.slots) == 7
    batches = iter(loader)
    held = next(batches)
    held_slot = _slot_of(held, ring)
    assert held_slot is not None
    copy = _clone(held)
    later = [_slot_of(b, ring) for b in batches]
    dm.sampler.set_epoch(1)
    later += [_slot_of(b, ring) for b in loader]
    assert len(later) == 15
    lent = [slot for slot in later if slot is not None]
    assert len(lent) > len(set(lent))  # slots were reused meanwhile...
    assert held_slot not in lent  # ...but never the held one
    _assert_same(held, copy)
