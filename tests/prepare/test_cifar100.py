# SPDX-License-Identifier: MIT
"""``solo-div data prepare cifar100``: the python pickles become the data group's two indexes."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from solo_diversity.cli import main
from solo_diversity.index import ensure_index, open_index
from tests.prepare import fakes

LABELS = {"train": [3, 0, 99, 3, 7], "test": [5, 99, 0]}


def _prepare(source, tmp_path):
    argv = ["data", "prepare", "cifar100", "--from", str(source)]
    return main([*argv, "--out", str(tmp_path / "datasets")])


def _check(tmp_path):
    for split, labels in LABELS.items():
        path = tmp_path / "datasets" / "cifar100" / f"{split}.h5"
        index = open_index(ensure_index("cifar100", path, split=split))
        assert index.class_names[99] == "class099" and index.split == split
        order = [int(name[1:]) for name in index.entry_names()]  # "#<row in the pickle>"
        assert index.labels().tolist() == [labels[row] for row in order]
        pixels = np.asarray(Image.open(io.BytesIO(index.read_bytes(0))))
        assert pixels.shape == (32, 32, 3)
        assert pixels[5, 7].tolist() == [order[0], 2 * order[0], 3 * order[0]]


def test_from_the_unpacked_folder(tmp_path):
    fakes.cifar100(tmp_path / "dl", LABELS)
    assert _prepare(tmp_path / "dl", tmp_path) == 0
    _check(tmp_path)


def test_from_the_official_archive(tmp_path):
    fakes.cifar100(tmp_path / "dl", LABELS)
    archive = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(tmp_path / "dl" / "cifar-100-python", arcname="cifar-100-python")
    assert _prepare(archive, tmp_path) == 0
    _check(tmp_path)


def test_without_the_pickles_says_what_to_place_where(tmp_path, capsys):
    (tmp_path / "dl").mkdir()
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "dl", tmp_path)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: CIFAR-100 not found in {tmp_path / 'dl'}: place cifar-100-python.tar.gz (or its "
        "unpacked cifar-100-python/) there (from "
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz)"
    )
