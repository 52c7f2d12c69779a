# SPDX-License-Identifier: MIT
"""``solo-div data prepare food101``: the meta split files decide train and val."""

from __future__ import annotations

import collections
import shutil
import tarfile

import pytest

from solo_diversity.cli import main
from solo_diversity.index import open_index
from tests.prepare import fakes

SPLIT = {
    "train": {"apple_pie": 3, "baby_back_ribs": 2, "waffles": 1},
    "test": {"apple_pie": 1, "waffles": 2},
}


def _prepare(source, tmp_path):
    argv = ["data", "prepare", "food101", "--from", str(source)]
    return main([*argv, "--out", str(tmp_path / "datasets"), "--index-cache", str(tmp_path / "c")])


def _counts(tmp_path, split):
    index = open_index(next((tmp_path / "c").glob(f"food101-{split}-seed0-*.h5")))
    assert index.class_names == ["apple_pie", "baby_back_ribs", "waffles"]
    for name, label in zip(index.entry_names(), index.labels().tolist(), strict=True):
        assert name.split("/")[0] == index.class_names[label]
    return dict(collections.Counter(index.class_names[c] for c in index.labels().tolist()))


def test_class_counts_follow_the_split_files(tmp_path):
    fakes.food101(tmp_path / "dl", SPLIT)
    assert _prepare(tmp_path / "dl", tmp_path) == 0
    assert _counts(tmp_path, "train") == SPLIT["train"]
    assert _counts(tmp_path, "test") == SPLIT["test"]


def test_from_the_official_archive(tmp_path):
    fakes.food101(tmp_path / "dl", SPLIT)
    with tarfile.open(tmp_path / "food-101.tar.gz", "w:gz") as t:
        t.add(tmp_path / "dl" / "food-101", arcname="food-101")
    shutil.rmtree(tmp_path / "dl")
    assert _prepare(tmp_path / "food-101.tar.gz", tmp_path) == 0
    assert _counts(tmp_path, "test") == SPLIT["test"]


def test_a_listed_image_that_is_missing_is_named(tmp_path, capsys):
    top = fakes.food101(tmp_path / "dl", SPLIT)
    (top / "images" / "waffles" / "1005.jpg").unlink()
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "dl", tmp_path)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {top / 'images' / 'waffles' / '1005.jpg'} is listed by the download's split "
        "file but missing"
    )


def test_without_the_download_says_what_to_place_where(tmp_path, capsys):
    (tmp_path / "dl").mkdir()
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "dl", tmp_path)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: Food-101 not found in {tmp_path / 'dl'}: place food-101.tar.gz or its unpacked "
        "food-101/ (images/, meta/) there (from http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz)"
    )
