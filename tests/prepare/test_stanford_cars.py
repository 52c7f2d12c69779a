# SPDX-License-Identifier: MIT
"""``solo-div data prepare stanford_cars``: labels and names from the devkit's .mat files."""

from __future__ import annotations

import collections

import pytest

from solo_diversity.cli import main
from solo_diversity.index import open_index
from tests.prepare import fakes

NAMES = ["AM General Hummer SUV 2000", "Ram C/V Cargo Van Minivan 2012", "Acura RL Sedan 2012"]
SPLIT = {"train": [1, 2, 2, 3, 1], "test": [3, 3, 2]}


def _prepare(source, tmp_path):
    argv = ["data", "prepare", "stanford_cars", "--from", str(source)]
    return main([*argv, "--out", str(tmp_path / "datasets"), "--index-cache", str(tmp_path / "c")])


def _counts(tmp_path, split):
    index = open_index(next((tmp_path / "c").glob(f"stanford_cars-{split}-seed0-*.h5")))
    assert index.class_names == sorted(n.replace("/", "-") for n in NAMES)
    return dict(collections.Counter(index.class_names[c] for c in index.labels().tolist()))


def test_labels_and_names_follow_the_devkit(tmp_path):
    fakes.stanford_cars(tmp_path / "dl", NAMES, SPLIT)
    assert _prepare(tmp_path / "dl", tmp_path) == 0
    assert _counts(tmp_path, "train") == {
        NAMES[0]: 2,
        "Ram C-V Cargo Van Minivan 2012": 2,
        NAMES[2]: 1,
    }
    assert _counts(tmp_path, "test") == {NAMES[2]: 2, "Ram C-V Cargo Van Minivan 2012": 1}


def test_without_the_devkit_says_what_to_place_where(tmp_path, capsys):
    fakes.image(tmp_path / "dl" / "cars_train" / "00001.jpg")
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "dl", tmp_path)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: Stanford Cars not found in {tmp_path / 'dl'}: place stanford_cars/ as "
        "torchvision reads it (cars_train/, cars_test/, devkit/, "
        "cars_test_annos_withlabels.mat) there (from "
        "https://pytorch.org/vision/stable/generated/torchvision.datasets.StanfordCars.html)"
    )
