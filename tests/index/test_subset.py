# SPDX-License-Identifier: MIT
"""Subset selection: exact sizes, nesting of fractions (plain and stratified), fraction errors."""

from __future__ import annotations

import numpy as np
import pytest

from solo_diversity.errors import UserError
from solo_diversity.index import Subset, open_index, select_subset

FRACTIONS = (0.1, 0.5, 1.0)


def test_plain_subset_is_a_prefix_of_the_stored_order(make_index):
    index = open_index(make_index([0, 1] * 50))
    sizes = []
    previous: set[int] = set()
    for fraction in FRACTIONS:
        subset = select_subset(index, fraction)
        assert isinstance(subset.positions, range)
        assert subset.positions == range(round(fraction * 100))
        current = set(subset.positions)
        assert previous <= current
        previous = current
        sizes.append(len(subset))
    assert sizes == [10, 50, 100]


def test_minus_one_means_all(make_index):
    index = open_index(make_index([0, 1, 2] * 7))
    subset = select_subset(index, -1)
    assert len(subset) == 21 and subset.fraction == 1.0


def test_plain_subset_keeps_at_least_one_entry(make_index):
    index = open_index(make_index([0] * 7))
    assert select_subset(index, 0.01).positions == range(1)


def test_plain_subset_reads_no_labels(make_index):
    index = open_index(make_index([0, 1] * 10))
    select_subset(index, 0.5)
    assert index._h5 is None  # nothing opened: a plain fraction is pure arithmetic


@pytest.mark.parametrize(
    "counts",
    [
        (20, 20, 20, 20),  # balanced
        (500, 37, 9, 3, 1),  # imbalanced: where train_test_split's stratification is not nested
    ],
)
def test_stratified_subsets_are_nested_with_exact_per_class_counts(make_index, counts):
    labels = np.repeat(np.arange(len(counts)), counts)
    index = open_index(make_index(labels.tolist()))
    stored = index.labels()
    previous = np.empty(0, dtype=np.int64)
    for fraction in (0.1, 0.25, 0.5, 0.9, 1.0):
        subset = select_subset(index, fraction, stratified=True)
        positions = np.asarray(subset.positions)
        assert np.all(np.diff(positions) > 0)
        assert np.isin(previous, positions).all()
        got = np.bincount(subset.labels(), minlength=len(counts))
        expected = [int(np.floor(fraction * n + 0.5)) for n in counts]
        assert got.tolist() == expected
        for c in range(len(counts)):  # the chosen ones are the first of their class in index order
            members = np.flatnonzero(stored == c)
            assert positions[stored[positions] == c].tolist() == members[: expected[c]].tolist()
        previous = positions


def test_stratified_full_fraction_is_a_range(make_index):
    index = open_index(make_index([0, 1, 1, 2] * 5))
    subset = select_subset(index, 1.0, stratified=True)
    assert subset.positions == range(20)


def test_subset_labels_match_index_labels(make_index):
    index = open_index(make_index([3, 1, 2, 0, 1, 1, 2, 3] * 4))
    subset = select_subset(index, 0.5, stratified=True)
    assert subset.labels().tolist() == index.labels()[np.asarray(subset.positions)].tolist()
    plain = select_subset(index, 0.25)
    assert plain.labels().tolist() == index.labels()[:8].tolist()


def test_subset_summary_names_the_index(make_index):
    index = open_index(make_index([0, 1] * 5))
    summary = select_subset(index, 0.5).summary()
    assert summary["index_fingerprint"] == index.fingerprint
    assert summary["num_samples"] == 5 and summary["stratified"] is False


@pytest.mark.parametrize("fraction", [0, 0.0, -0.5, 1.0001, 2, -2, float("nan"), float("inf")])
def test_bad_fraction_is_a_user_error(make_index, fraction):
    index = open_index(make_index([0, 1]))
    with pytest.raises(UserError, match=r"fraction must be in \(0, 1\] or -1 for all, got"):
        select_subset(index, fraction)


@pytest.mark.parametrize("fraction", [True, "0.5", None])
def test_non_number_fraction_is_a_user_error(make_index, fraction):
    index = open_index(make_index([0, 1]))
    with pytest.raises(UserError, match="fraction must be a number"):
        select_subset(index, fraction)


def test_stratified_on_unlabeled_index_is_a_user_error(make_index):
    index = open_index(make_index([-1] * 10))
    with pytest.raises(UserError, match="needs labels, but index .* is unlabeled"):
        select_subset(index, 0.5, stratified=True)


def test_stratified_fraction_too_small_for_every_class(make_index):
    index = open_index(make_index([0, 1, 2]))
    with pytest.raises(UserError, match="keeps no entry of any class"):
        select_subset(index, 0.1, stratified=True)


def test_subset_type(make_index):
    subset = select_subset(open_index(make_index([0, 1])), 1.0)
    assert isinstance(subset, Subset) and len(subset) == 2
