# SPDX-License-Identifier: MIT
"""Whole-batch reads: ``PretrainDataset.__getitems__`` and ``ImageIndex.read_many``.

A batch read at once equals its items read one by one (views, positions, targets and the read
counts), unreadable entries and missing files included; ``read_many`` equals ``read_bytes``.
"""

from __future__ import annotations

import pytest
import torch

from solo_diversity.data import (
    PretrainDataset,
    ReadCounter,
)
from solo_diversity.data.datasets import AssembledBatch
from tests.data.batch_inputs import TRANSFORMS, subset_with_unreadable


def _unreadable_run(positions, unreadable, entry):
    """Unreadable entries read from ``entry`` on before a readable one (wrapping)."""
    step = 0
    while positions[(entry + step) % len(positions)] in unreadable:
        step += 1
    return step


def _stacked(items):
    return [
        torch.tensor([item[0] for item in items]),
        [torch.stack([item[1][k] for item in items]) for k in range(len(items[0][1]))],
        torch.tensor([item[2] for item in items]),
    ]


@pytest.mark.parametrize("backend", sorted(TRANSFORMS))
def test_getitems_equals_items_one_by_one(build_subset, images, noise_layout, backend):
    subset, unreadable = subset_with_unreadable(build_subset, images, noise_layout)
    n = len(subset)
    assert n == 21 and len(unreadable) == 4
    entries = [(7 * i + 3) % n for i in range(n)]  # every entry, shuffled
    keys = [(e, 1000 + 13 * e) for e in entries]
    keys += [keys[5], (keys[5][0], 99)]  # the same key twice, and its entry with another seed
    batched = PretrainDataset(subset, TRANSFORMS[backend](), ReadCounter())
    single = PretrainDataset(subset, TRANSFORMS[backend](), ReadCounter())
    got = batched.__getitems__(keys)
    want = _stacked([single[k] for k in keys])
    assert isinstance(got, AssembledBatch) and len(got) == 3
    assert got[0].dtype == torch.long and got[2].dtype == torch.long
    assert got[0].tolist() == want[0].tolist()
    assert got[2].tolist() == want[2].tolist()
    assert [tuple(v.shape) for v in got[1]] == [(23, 3, 8, 8)] * 2 + [(23, 3, 4, 4)]
    for g, w in zip(got[1], want[1], strict=True):
        assert torch.equal(g, w)
    assert not set(got[0].tolist()) & unreadable  # substitutes were delivered
    assert not torch.equal(got[1][0][21], got[1][0][22])  # another seed, other views
    assert (batched.counter.loaded, batched.counter.bad) == (
        single.counter.loaded,
        single.counter.bad,
    )
    positions = [int(p) for p in subset.positions]
    runs = [_unreadable_run(positions, unreadable, entry) for entry, _ in keys]
    assert batched.counter.loaded == 23 and batched.counter.bad == sum(runs) >= 4


@pytest.mark.parametrize("embed", [True, False])
def test_read_many_equals_read_bytes(build_subset, noise_layout, embed):
    index = build_subset(noise_layout(2, 4), seed=1, embed=embed).index
    assert index.kind == ("bytes" if embed else "paths")
    positions = [5, 0, 5, 7, 2, 2, 3]
    assert index.read_many(positions) == [index.read_bytes(p) for p in positions]
    assert len(set(index.read_many(range(8)))) == 8
    assert index.read_many([]) == []


def test_read_many_puts_a_missing_files_error_in_its_place(build_subset, noise_layout):
    index = build_subset(noise_layout(2, 4), seed=1).index
    index.file_path(3).unlink()
    out = index.read_many([1, 3, 6, 3])
    assert out[0] == index.read_bytes(1) and out[2] == index.read_bytes(6)
    for error in (out[1], out[3]):
        assert isinstance(error, FileNotFoundError)
        assert error.filename == str(index.file_path(3))
    with pytest.raises(FileNotFoundError):
        index.read_bytes(3)


def test_read_many_position_out_of_range(build_subset, noise_layout):
    index = build_subset(noise_layout(2, 4), embed=True).index
    with pytest.raises(IndexError, match=r"^position 8 out of range for an index of 8 entries$"):
        index.read_many([0, 8])
