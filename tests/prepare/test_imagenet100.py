# SPDX-License-Identifier: MIT
"""``solo-div data prepare imagenet100``: CMC's 100 classes carved out of an ImageNet tree."""

from __future__ import annotations

import shutil

import pytest

from solo_diversity.builders.source.build import imagenet100_wnids
from solo_diversity.cli import main
from solo_diversity.index import open_index
from tests.prepare import fakes

OTHER = "n09999999"  # an ImageNet class outside ImageNet-100


def _prepare(source, tmp_path):
    argv = ["data", "prepare", "imagenet100", "--from", str(source)]
    return main([*argv, "--out", str(tmp_path / "datasets"), "--index-cache", str(tmp_path / "c")])


def test_keeps_the_100_cmc_classes_in_both_splits(tmp_path):
    wnids = imagenet100_wnids()
    fakes.imagenet(tmp_path / "imagenet", [*wnids, OTHER], 1)
    assert _prepare(tmp_path / "imagenet", tmp_path) == 0
    for split in ("train", "test"):
        index = open_index(next((tmp_path / "c").glob(f"imagenet100-{split}-seed0-*.h5")))
        assert index.class_names == sorted(wnids)
        assert sorted(index.labels().tolist()) == list(range(100))
        names = {
            n.split("/")[0]: index.class_names[c]
            for n, c in zip(index.entry_names(), index.labels().tolist(), strict=True)
        }
        assert all(folder == wnid for folder, wnid in names.items())
    assert not (tmp_path / "datasets" / "imagenet100" / "train" / OTHER).exists()


def test_a_flat_val_folder_is_named_in_one_line(tmp_path, capsys):
    fakes.imagenet(tmp_path / "imagenet", imagenet100_wnids(), 1, flat_val=True)
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "imagenet", tmp_path)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'imagenet' / 'val'} is flat (no class folders); sort it into "
        "<wnid>/ folders first, e.g. with the devkit's ILSVRC2012_validation_ground_truth.txt"
    )
    assert not (tmp_path / "datasets").exists()


def test_a_missing_class_folder_is_named(tmp_path, capsys):
    wnids = imagenet100_wnids()
    fakes.imagenet(tmp_path / "imagenet", wnids, 1)
    shutil.rmtree(tmp_path / "imagenet" / "train" / wnids[3])
    with pytest.raises(SystemExit) as exit_:
        _prepare(tmp_path / "imagenet", tmp_path)
    assert exit_.value.code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"train lacks 1 of the ImageNet-100 class folders, e.g. {wnids[3]}")
    )
