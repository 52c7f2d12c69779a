# SPDX-License-Identifier: MIT
"""Source sets from a fake ImageNet tree: the class list, sizes, uniformity, disjointness, seeding,
and the errors that write nothing."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from solo_diversity.builders.source.build import (
    SET_FILES,
    build_source_sets,
    imagenet100_wnids,
)
from solo_diversity.errors import UserError
from solo_diversity.index import build_index, open_index

from .conftest import OTHER_WNIDS, PER_CLASS


def class_counts(path):
    index = open_index(path)
    return Counter(index.class_names[int(label)] for label in index.labels())


def names_of(path):
    index = open_index(path)
    return set(index.entry_names())


@pytest.fixture(scope="module")
def sets(imagenet_index, tmp_path_factory):
    out = tmp_path_factory.mktemp("source")
    return build_source_sets(imagenet_index, out, seed=0, a_out_size=15, a_out_classes=5)


def test_imagenet100_list_is_100_unique_wnids():
    wnids = imagenet100_wnids()
    assert len(wnids) == 100 and len(set(wnids)) == 100
    assert all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    assert wnids[0] == "n02869837"  # the first line of CMC's imagenet100.txt


def test_sizes_and_uniform_classes(sets):
    wnids = set(imagenet100_wnids())
    for name in ("B", "A_in_source"):
        counts = class_counts(sets[name])
        assert set(counts) == wnids and set(counts.values()) == {PER_CLASS // 2}
    out = class_counts(sets["A_out_source"])
    assert len(out) == 5 and set(out.values()) == {3} and sum(out.values()) == 15
    assert {p.name for p in sets.values()} == set(SET_FILES.values())


def test_b_and_a_in_are_disjoint_and_cover_imagenet100(sets, imagenet_index):
    b, a_in = names_of(sets["B"]), names_of(sets["A_in_source"])
    assert not b & a_in
    wnids = set(imagenet100_wnids())
    full = open_index(imagenet_index)
    in100 = {n for n in full.entry_names() if n.split("/")[0] in wnids}
    assert b | a_in == in100


def test_b_is_the_first_half_of_each_class_in_shuffled_order(sets, imagenet_index):
    full = open_index(imagenet_index)
    seen: Counter[str] = Counter()
    first_half = set()
    for name in full.entry_names():
        wnid = name.split("/")[0]
        if seen[wnid] < PER_CLASS // 2:
            first_half.add(name)
        seen[wnid] += 1
    assert names_of(sets["B"]) <= first_half


def test_a_out_classes_are_outside_imagenet100(sets):
    out = set(class_counts(sets["A_out_source"]))
    assert out <= set(OTHER_WNIDS) and not out & set(imagenet100_wnids())


def test_same_seed_same_sets_other_seed_other_a_out(sets, imagenet_index, tmp_path):
    again = build_source_sets(
        imagenet_index, tmp_path / "s0", seed=0, a_out_size=15, a_out_classes=5
    )
    other = build_source_sets(
        imagenet_index, tmp_path / "s1", seed=1, a_out_size=15, a_out_classes=5
    )
    for name in SET_FILES:
        assert open_index(again[name]).fingerprint == open_index(sets[name]).fingerprint
    assert set(class_counts(other["A_out_source"])) != set(class_counts(sets["A_out_source"]))
    assert names_of(other["B"]) == names_of(sets["B"])  # B follows the index's order only


def test_not_a_wnid_index(tmp_path):
    root = tmp_path / "tree"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        (root / name / "x.png").write_bytes(b"\x89PNG")
    index = build_index("folder", tmp_path / "pets.h5", root=root)
    with pytest.raises(UserError, match="WNIDs"):
        build_source_sets(index, tmp_path / "out", seed=0)
    assert not (tmp_path / "out").exists()


def test_imagenet100_classes_missing(imagenet_index, tmp_path):
    few = tmp_path / "few.h5"
    from solo_diversity.index.set_ops import filter_index

    filter_index(imagenet_index, few, list(OTHER_WNIDS) + imagenet100_wnids()[:50])
    with pytest.raises(UserError, match="lacks 50 of the ImageNet-100"):
        build_source_sets(few, tmp_path / "out", seed=0)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"a_out_classes": 11}, "only 10 classes"),
        ({"a_out_classes": 5, "a_out_size": 21}, "entries, 5 needed"),
        ({"a_out_size": 0}, "must be positive"),
    ],
)
def test_a_out_that_cannot_be_drawn(imagenet_index, tmp_path, kw, match):
    with pytest.raises(UserError, match=match):
        build_source_sets(imagenet_index, tmp_path / "out", seed=0, **kw)
    assert not (tmp_path / "out").exists()


def test_labels_are_those_of_the_imagenet_index(sets, imagenet_index):
    full = open_index(imagenet_index)
    b = open_index(sets["B"])
    assert b.class_names == full.class_names
    rows = b.source_positions()
    assert np.array_equal(full.labels(rows), b.labels())


def test_b_and_a_in_open_as_imagenet100_and_a_out_as_imagenet(sets, imagenet_index):
    # a data=imagenet100 run opens B (Figure 3's baseline) with its dataset check
    assert open_index(sets["B"], expected_dataset="imagenet100").dataset == "imagenet100"
    assert open_index(sets["A_in_source"]).dataset == "imagenet100"
    assert open_index(sets["A_out_source"]).dataset == open_index(imagenet_index).dataset
