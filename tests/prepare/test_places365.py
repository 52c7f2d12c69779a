# SPDX-License-Identifier: MIT
"""``solo-div data prepare places365``: classes from the categories file, labels from the lists."""

from __future__ import annotations

import pytest

from solo_diversity.cli import main
from solo_diversity.index import open_index
from tests.prepare import fakes

CATEGORIES = ["/a/abbey", "/a/apartment_building/outdoor", "/b/bakery/shop"]
FOLDERS = ["abbey", "apartment_building-outdoor", "bakery-shop"]
TRAIN, VAL = [0, 1, 1, 2, 0], [2, 0, 1, 2]


def _prepare(source, tmp_path):
    argv = ["data", "prepare", "places365", "--from", str(source)]
    return main([*argv, "--out", str(tmp_path / "datasets"), "--index-cache", str(tmp_path / "c")])


def test_val_labels_match_the_val_list(tmp_path):
    fakes.places365(tmp_path / "dl", CATEGORIES, TRAIN, VAL)
    assert _prepare(tmp_path / "dl", tmp_path) == 0
    val = open_index(next((tmp_path / "c").glob("places365-test-seed0-*.h5")))
    assert val.class_names == FOLDERS
    found = {
        int(name.split("_")[-1][:8]): label
        for name, label in zip(val.entry_names(), val.labels().tolist(), strict=True)
    }
    assert found == {n: c for n, c in enumerate(VAL, start=1)}
    train = open_index(next((tmp_path / "c").glob("places365-train-seed0-*.h5")))
    assert sorted(train.labels().tolist()) == sorted(TRAIN)


def test_without_the_file_lists_says_what_to_place_where(tmp_path, capsys):
    fakes.image(tmp_path / "dl" / "val_256" / "Places365_val_00000001.jpg")
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "dl", tmp_path)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: Places365 not found in {tmp_path / 'dl'}: place filelist_places365-standard.tar "
        "unpacked with data_256/ and val_256/ (train_256_places365standard.tar, val_256.tar) "
        "there (from http://data.csail.mit.edu/places/places365/)"
    )
