# SPDX-License-Identifier: MIT
"""``solo-div data prepare flowers102``: train+val ids train, test ids validate; .mat labels."""

from __future__ import annotations

import pytest

from solo_diversity.cli import main
from solo_diversity.index import open_index
from tests.prepare import fakes

LABELS = [1, 3, 3, 2, 1, 3, 2, 1]  # image_00001 .. image_00008, classes 1..3
IDS = {"trnid": [1, 4], "valid": [2, 8], "tstid": [3, 5, 6, 7]}


def _prepare(source, tmp_path):
    argv = ["data", "prepare", "flowers102", "--from", str(source)]
    return main([*argv, "--out", str(tmp_path / "datasets"), "--index-cache", str(tmp_path / "c")])


def _by_image(tmp_path, split):
    index = open_index(next((tmp_path / "c").glob(f"flowers102-{split}-seed0-*.h5")))
    assert index.class_names == ["001", "002", "003"]
    return {
        int(name.split("_")[1][:5]): int(index.class_names[label])
        for name, label in zip(index.entry_names(), index.labels().tolist(), strict=True)
    }


def test_labels_and_splits_follow_the_mat_files(tmp_path):
    fakes.flowers102(tmp_path / "dl", LABELS, IDS)
    assert _prepare(tmp_path / "dl", tmp_path) == 0
    assert _by_image(tmp_path, "train") == {i: LABELS[i - 1] for i in (1, 2, 4, 8)}
    assert _by_image(tmp_path, "test") == {i: LABELS[i - 1] for i in (3, 5, 6, 7)}


def test_without_the_mat_files_says_what_to_place_where(tmp_path, capsys):
    fakes.image(tmp_path / "dl" / "jpg" / "image_00001.jpg")
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "dl", tmp_path)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: Flowers-102 not found in {tmp_path / 'dl'}: place jpg/ (102flowers.tgz "
        "unpacked), imagelabels.mat and setid.mat there "
        "(from https://www.robots.ox.ac.uk/~vgg/data/flowers/102/)"
    )
