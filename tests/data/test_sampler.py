# SPDX-License-Identifier: MIT
import numpy as np
import pytest

from solo_diversity.data import EpochSampler, epoch_permutation, per_rank_samples
from solo_diversity.errors import UserError


def _ranks(n=103, world=2, **kw):
    kw = {"batch_size": 4, "seed": 5, "accumulate": 3} | kw
    return [EpochSampler(n, world_size=world, rank=r, **kw) for r in range(world)]


def test_per_rank_count_is_exact():
    # floor(103 / 2 / 12) * 12 = 48
    assert per_rank_samples(103, batch_size=4, world_size=2, accumulate=3) == 48
    for sampler in _ranks():
        assert len(sampler) == 48 and len(list(sampler)) == 48
        assert len(sampler) % (4 * 3) == 0
        assert sampler.global_batch == 24 and sampler.optimizer_steps_per_epoch == 4


def test_ranks_are_disjoint_and_cover_the_permutation_head():
    r0, r1 = _ranks()
    a, b = list(r0), list(r1)
    assert not set(a) & set(b)
    head = epoch_permutation(103, 5, 0)[:96]
    assert sorted(a + b) == sorted(head.tolist())
    assert a == head[0::2].tolist() and b == head[1::2].tolist()
    assert all(0 <= i < 103 for i in a + b)


def test_single_rank_takes_whole_batches():
    (sampler,) = _ranks(n=50, world=1, batch_size=8, accumulate=1)
    assert len(sampler) == 48 and len(set(sampler)) == 48


def test_reshuffles_between_epochs():
    (sampler,) = _ranks(world=1)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert first != second
    assert set(first) != set(second)  # the dropped tail changes too
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_deterministic_for_seed():
    a = _ranks(seed=3)[1]
    b = _ranks(seed=3)[1]
    c = _ranks(seed=4)[1]
    for s in (a, b, c):
        s.set_epoch(7)
    assert list(a) == list(b)
    assert list(a) != list(c)


def test_permutation_is_a_permutation():
    perm = epoch_permutation(1000, seed=0, epoch=2)
    assert np.array_equal(np.sort(perm), np.arange(1000))


def test_subset_smaller_than_global_batch():
    with pytest.raises(UserError) as err:
        EpochSampler(10, batch_size=4, world_size=2, rank=0, seed=0, accumulate=2)
    assert str(err.value) == (
        "subset of 10 images is smaller than one global batch of 16 "
        "(batch_size 4 × devices 2 × accumulate 2)"
    )


def test_exactly_one_global_batch_is_enough():
    r0, r1 = _ranks(n=16, batch_size=4, accumulate=2)
    assert len(r0) == len(r1) == 8


def test_bad_rank():
    with pytest.raises(UserError, match=r"rank must be in \[0, 2\), got 2"):
        EpochSampler(100, batch_size=4, world_size=2, rank=2, seed=0)


def test_bad_batch_size():
    with pytest.raises(UserError, match="batch_size must be an integer >= 1, got 0"):
        EpochSampler(100, batch_size=0, world_size=1, rank=0, seed=0)


def test_passes_chain_fresh_permutations_into_one_epoch():
    one = EpochSampler(100, batch_size=8, world_size=2, rank=0, seed=3)
    three = EpochSampler(100, batch_size=8, world_size=2, rank=0, seed=3, passes=3)
    other = EpochSampler(100, batch_size=8, world_size=2, rank=1, seed=3, passes=3)
    assert len(three) == 3 * len(one) == 3 * 48 and three.optimizer_steps_per_epoch == 18
    three.set_epoch(2)
    passes = three.indices().reshape(3, 48)
    for p, chunk in enumerate(passes):
        assert np.array_equal(chunk, one.indices(epoch=2 * 3 + p))  # pass p of epoch 2
        assert len(set(chunk.tolist())) == 48  # no image twice within a pass
    assert not set(three.indices().tolist()[:48]) & set(other.indices(epoch=2).tolist()[:48])
