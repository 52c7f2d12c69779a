# SPDX-License-Identifier: MIT
"""Source-set selection: sizes, uniformity, disjointness, seeding."""

import numpy as np
import pytest

from solo_diversity.builders.source.sets import pick_out_classes, split_half, uniform_take
from solo_diversity.errors import UserError

LABELS = np.random.default_rng(0).permutation(np.repeat(np.arange(12), 7))


def test_uniform_take_counts():
    pos = uniform_take(LABELS, np.arange(5), 17)
    counts = np.bincount(LABELS[pos], minlength=12)[:5]
    assert len(pos) == 17 and counts.max() - counts.min() <= 1


def test_uniform_take_short_class():
    with pytest.raises(UserError):
        uniform_take(LABELS, np.arange(2), 20)


def test_split_half_disjoint_and_complete():
    b, a = split_half(LABELS, np.arange(4))
    assert not set(b) & set(a)
    assert set(b) | set(a) == set(np.flatnonzero(LABELS < 4))


def test_out_classes_seeded_and_excluded():
    one = pick_out_classes(np.arange(12), np.arange(4), 3, seed=1)
    assert not set(one) & set(range(4))
    assert np.array_equal(one, pick_out_classes(np.arange(12), np.arange(4), 3, seed=1))
