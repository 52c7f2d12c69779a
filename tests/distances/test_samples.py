# SPDX-License-Identifier: MIT
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from solo_diversity.distances.samples import parse_dataset_spec, sample_dataset, sample_positions
from solo_diversity.errors import UserError


def test_seeded_cap_selects_the_same_samples_twice(make_dataset):
    path = make_dataset("a", n=30)
    first = sample_dataset(path, max_samples=12, seed=7)
    second = sample_dataset(path, max_samples=12, seed=7)
    assert len(first) == 12
    np.testing.assert_array_equal(first.positions, second.positions)
    assert first.key == second.key
    np.testing.assert_array_equal(
        first.positions, np.sort(np.random.default_rng(7).choice(30, size=12, replace=False))
    )
    other = sample_dataset(path, max_samples=12, seed=8)
    assert not np.array_equal(other.positions, first.positions)
    assert other.key != first.key


def test_unseeded_cap_is_the_index_order_prefix(make_dataset):
    path = make_dataset("a", n=30)
    np.testing.assert_array_equal(sample_dataset(path, max_samples=10).positions, np.arange(10))
    assert len(sample_dataset(path)) == 30  # default cap 50,000 keeps all


def test_fraction_spec_takes_the_subset_before_the_cap(make_dataset):
    path = make_dataset("a", n=30)
    sample = sample_dataset(f"{path}:0.5", max_samples=10, seed=0)
    assert sample.fraction == 0.5 and sample.name == "a:0.5"
    assert len(sample) == 10 and sample.positions.max() < 15


def test_parse_dataset_spec():
    assert parse_dataset_spec("x/imagenet.h5") == (Path("x/imagenet.h5"), 1.0)
    path, fraction = parse_dataset_spec("data/yfcc.h5:0.01")
    assert str(path) == "data/yfcc.h5" and fraction == 0.01


def test_bad_fraction_is_a_user_error():
    with pytest.raises(UserError, match=r"fraction 1.5 must be in \(0, 1\]"):
        parse_dataset_spec("a.h5:1.5")
    with pytest.raises(UserError, match="'half' after ':' is not a fraction"):
        parse_dataset_spec("a.h5:half")


def test_bad_cap_is_a_user_error():
    with pytest.raises(UserError, match="--max-samples must be a positive number of images, got 0"):
        sample_positions(10, 0, None)
