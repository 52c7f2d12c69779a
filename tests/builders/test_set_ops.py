# SPDX-License-Identifier: MIT
"""The set algebra: union (origins, N, class remapping, seeded order), subset, filter, exclude."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from solo_diversity.errors import UserError
from solo_diversity.index import open_index, select_subset
from solo_diversity.index.set_ops import (
    exclude_index,
    filter_index,
    subset_index,
    union_indexes,
)


def entries(index):
    """(content bytes, class name) of every entry, as a multiset."""
    return Counter(
        (index.read_bytes(i), index.class_names[int(label)])
        for i, label in enumerate(index.labels())
    )


@pytest.mark.parametrize("kind", ["", "_bytes"])
def test_union_origins_point_at_the_same_image(pets, tmp_path, kind):
    inputs = [open_index(pets["a" + kind]), open_index(pets["b" + kind])]
    union = open_index(union_indexes([i.path for i in inputs], tmp_path / "u.h5", seed=4))
    assert len(union) == 6 + 6 and union.kind == inputs[0].kind
    assert [o["fingerprint"] for o in union.origin_sources] == [i.fingerprint for i in inputs]
    origins, rows, labels = union.origins(), union.source_positions(), union.labels()
    assert np.bincount(origins).tolist() == [6, 6]
    for pos in range(len(union)):
        src = inputs[int(origins[pos])]
        assert union.read_bytes(pos) == src.read_bytes(int(rows[pos]))
        src_label = int(src.labels(np.array([rows[pos]]))[0])
        assert union.class_names[int(labels[pos])] == src.class_names[src_label]


def test_union_class_names_are_merged_by_name(pets, tmp_path):
    union = open_index(union_indexes([pets["a"], pets["b"]], tmp_path / "u.h5", seed=0))
    assert union.class_names == ["cat", "dog", "ant", "eel"]
    counts = np.bincount(union.labels(), minlength=4).tolist()
    assert counts == [3, 3 + 2, 2, 2]
    a, b = open_index(pets["a"]), open_index(pets["b"])
    assert entries(union) == entries(a) + entries(b)


def test_union_order_depends_on_the_seed(pets, tmp_path):
    paths = [pets["a_bytes"], pets["b_bytes"]]
    one = open_index(union_indexes(paths, tmp_path / "1.h5", seed=1))
    again = open_index(union_indexes(paths, tmp_path / "1b.h5", seed=1))
    other = open_index(union_indexes(paths, tmp_path / "2.h5", seed=2))
    assert one.fingerprint == again.fingerprint
    assert one.fingerprint != other.fingerprint
    assert entries(one) == entries(other)


def test_union_of_one_root_keeps_relative_paths(imagenet_index, tmp_path):
    full = open_index(imagenet_index)
    half = subset_index(imagenet_index, tmp_path / "h1.h5", count=200)
    rest = exclude_index(imagenet_index, tmp_path / "h2.h5", half)
    union = open_index(union_indexes([half, rest], tmp_path / "u.h5", seed=9))
    assert union.root == full.root and len(union) == len(full)
    assert sorted(union.entry_names()) == sorted(full.entry_names())
    assert len(select_subset(union, 1.0)) == len(full)  # the budget plan's N


def test_union_dataset_name(pets, tmp_path):
    joined = open_index(union_indexes([pets["a"], pets["b"]], tmp_path / "j.h5", seed=0))
    named = union_indexes([pets["a"], pets["b"]], tmp_path / "n.h5", seed=0, dataset="in100")
    assert joined.dataset == "a+b"
    assert open_index(named, expected_dataset="in100").fingerprint == joined.fingerprint


def test_union_of_different_roots_stores_absolute_paths(pets, tmp_path):
    union = open_index(union_indexes([pets["a"], pets["b"]], tmp_path / "u.h5", seed=0))
    assert union.root is None
    assert all(union.file_path(i).is_absolute() and union.file_path(i).is_file() for i in range(12))


def test_union_of_mixed_kinds_is_one_line(pets, tmp_path):
    with pytest.raises(UserError, match="one kind") as err:
        union_indexes([pets["a"], pets["b_bytes"]], tmp_path / "u.h5", seed=0)
    assert "\n" not in str(err.value) and not (tmp_path / "u.h5").exists()


def test_union_needs_two_inputs(pets, tmp_path):
    with pytest.raises(UserError, match="at least two"):
        union_indexes([pets["a"]], tmp_path / "u.h5", seed=0)


def test_a_subset_of_a_union_keeps_origins(pets, tmp_path):
    union = union_indexes([pets["a_bytes"], pets["b_bytes"]], tmp_path / "u.h5", seed=0)
    part = open_index(subset_index(union, tmp_path / "s.h5", count=5))
    full = open_index(union)
    by_content = {full.read_bytes(i): int(o) for i, o in enumerate(full.origins())}
    assert part.has_origin and len(part) == 5
    assert all(by_content[part.read_bytes(i)] == int(o) for i, o in enumerate(part.origins()))


def test_subsets_nest(imagenet_index, tmp_path):
    names = []
    for i, kw in enumerate([{"fraction": 0.1}, {"count": 100}, {"fraction": 0.5}]):
        out = open_index(subset_index(imagenet_index, tmp_path / f"s{i}.h5", **kw))
        names.append(set(out.entry_names()))
    assert [len(n) for n in names] == [44, 100, 220]
    assert names[0] < names[1] < names[2]
    full = open_index(imagenet_index)
    assert names[1] == set(full.entry_names(0, 100))  # the first K of the shuffled order


def test_filter_keeps_exactly_those_classes(imagenet_index, tmp_path):
    full = open_index(imagenet_index)
    keep = [full.class_names[5], full.class_names[70]]
    out = open_index(filter_index(imagenet_index, tmp_path / "f.h5", keep))
    assert len(out) == 8 and out.class_names == full.class_names
    assert {out.class_names[int(label)] for label in out.labels()} == set(keep)
    assert json.loads(out.source)["fingerprint"] == full.fingerprint


def test_filter_unknown_class(imagenet_index, tmp_path):
    with pytest.raises(UserError, match="n00000000"):
        filter_index(imagenet_index, tmp_path / "f.h5", ["n00000000"])
    assert not (tmp_path / "f.h5").exists()


def test_exclude_by_content_exact_count(pets, tmp_path):
    dogs = filter_index(pets["a_bytes"], tmp_path / "dogs.h5", ["dog"])
    out = open_index(exclude_index(pets["a_bytes"], tmp_path / "x.h5", dogs))
    assert len(out) == 3 and {out.class_names[int(v)] for v in out.labels()} == {"cat"}
    # a paths reference is compared by the content of its files too
    assert len(open_index(exclude_index(pets["b_bytes"], tmp_path / "y.h5", pets["a"]))) == 6


def test_exclude_by_path_exact_count(imagenet_index, tmp_path):
    first = subset_index(imagenet_index, tmp_path / "first.h5", count=30)
    out = open_index(exclude_index(imagenet_index, tmp_path / "x.h5", first))
    assert len(out) == 440 - 30
    assert not set(out.entry_names()) & set(open_index(first).entry_names())


def test_exclude_everything_writes_nothing(pets, tmp_path):
    with pytest.raises(UserError, match="nothing to write"):
        exclude_index(pets["a"], tmp_path / "x.h5", pets["a"])
    assert not (tmp_path / "x.h5").exists()


def test_exclude_paths_against_bytes(pets, tmp_path):
    with pytest.raises(UserError, match="like with like"):
        exclude_index(pets["a"], tmp_path / "x.h5", pets["a_bytes"])
