# SPDX-License-Identifier: MIT
"""``solo-div data prepare oxford_pets``: breeds from the annotation lists, trainval vs test."""

from __future__ import annotations

import collections

import pytest

from solo_diversity.cli import main
from solo_diversity.index import open_index
from tests.prepare import fakes

SPLIT = {
    "trainval": ["Abyssinian_1", "Abyssinian_2", "american_bulldog_10", "great_pyrenees_3"],
    "test": ["Abyssinian_7", "great_pyrenees_11", "great_pyrenees_12"],
}
BREEDS = ["Abyssinian", "american_bulldog", "great_pyrenees"]


def _prepare(source, tmp_path):
    argv = ["data", "prepare", "oxford_pets", "--from", str(source)]
    return main([*argv, "--out", str(tmp_path / "datasets"), "--index-cache", str(tmp_path / "c")])


def _counts(tmp_path, split):
    index = open_index(next((tmp_path / "c").glob(f"oxford_pets-{split}-seed0-*.h5")))
    assert index.class_names == BREEDS
    return dict(collections.Counter(index.class_names[c] for c in index.labels().tolist()))


def test_breeds_and_splits_follow_the_annotation_lists(tmp_path):
    fakes.oxford_pets(tmp_path / "dl", SPLIT)
    assert _prepare(tmp_path / "dl", tmp_path) == 0
    assert _counts(tmp_path, "train") == {
        "Abyssinian": 2,
        "american_bulldog": 1,
        "great_pyrenees": 1,
    }
    assert _counts(tmp_path, "test") == {"Abyssinian": 1, "great_pyrenees": 2}


def test_without_the_annotations_says_what_to_place_where(tmp_path, capsys):
    fakes.image(tmp_path / "dl" / "images" / "Abyssinian_1.jpg")
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "dl", tmp_path)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: Oxford-IIIT Pets not found in {tmp_path / 'dl'}: place images.tar.gz and "
        "annotations.tar.gz unpacked (images/, annotations/) there "
        "(from https://www.robots.ox.ac.uk/~vgg/data/pets/)"
    )
