# SPDX-License-Identifier: MIT
"""Each bad input to an index build is a one-line UserError naming the bad value.

Bad index files (foreign, wrong version, truncated, moved root, ...) are in test_bad_indexes.py.
"""

from __future__ import annotations

import shutil

import h5py
import pytest

from solo_diversity.errors import UserError
from solo_diversity.index import build_index, open_index


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_source_folder(tmp_path):
    with pytest.raises(UserError, match="folder source folder does not exist: .*nowhere") as err:
        build_index("folder", tmp_path / "x.h5", root=tmp_path / "nowhere")
    one_line(err)
    assert not (tmp_path / "x.h5").exists()


def test_folder_without_class_folders(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(UserError, match="no class sub-folders in .*src; use source 'flat'"):
        build_index("folder", tmp_path / "x.h5", root=tmp_path / "src")


def test_empty_class_folders(tmp_path):
    (tmp_path / "src" / "a").mkdir(parents=True)
    (tmp_path / "src" / "a" / "readme.txt").write_text("no images")
    with pytest.raises(UserError, match=r"no image files under .*src \(extensions: .*\.jpg"):
        build_index("folder", tmp_path / "x.h5", root=tmp_path / "src")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_empty_flat_folder(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(UserError, match="no image files under"):
        build_index("flat", tmp_path / "x.h5", root=tmp_path / "src")


def test_empty_list_file(tmp_path):
    (tmp_path / "empty.txt").write_text("# only a comment\n\n")
    with pytest.raises(UserError, match="source 'list:.*empty.txt' has no entries"):
        build_index("list", tmp_path / "x.h5", list_path=tmp_path / "empty.txt")


def test_missing_list_file(tmp_path):
    with pytest.raises(UserError, match="list file does not exist: .*gone.csv"):
        build_index("list", tmp_path / "x.h5", list_path=tmp_path / "gone.csv")


def test_csv_without_path_column(tmp_path):
    (tmp_path / "l.csv").write_text("file,label\na.jpg,0\n")
    with pytest.raises(
        UserError, match=r"CSV .*l.csv has no 'path' column \(columns: file, label\)"
    ) as err:
        build_index("list", tmp_path / "x.h5", list_path=tmp_path / "l.csv")
    one_line(err)


def test_csv_with_empty_label(tmp_path):
    (tmp_path / "l.csv").write_text("path,label\na.jpg,0\nb.jpg,\n")
    with pytest.raises(UserError, match="line 3: empty 'label' value"):
        build_index("list", tmp_path / "x.h5", list_path=tmp_path / "l.csv")


def test_unknown_source_lists_valid_ones(tmp_path):
    with pytest.raises(UserError) as err:
        build_index("imagenet", tmp_path / "x.h5")
    assert one_line(err) == (
        "unknown index source 'imagenet'; "
        "valid: folder, flat, list, torchvision, digits, fashion_mnist"
    )


def test_unknown_source_option(tmp_path):
    with pytest.raises(UserError, match="source 'digits' does not take option\\(s\\) list_path"):
        build_index("digits", tmp_path / "x.h5", list_path="a.txt")


def test_builtin_cannot_skip_embedding(tmp_path):
    with pytest.raises(UserError, match="source 'digits' always embeds its images"):
        build_index("digits", tmp_path / "x.h5", embed=False)


def test_bad_seed(tmp_path):
    with pytest.raises(UserError, match="index seed must be a non-negative integer, got -3"):
        build_index("digits", tmp_path / "x.h5", seed=-3)


def test_unknown_builtin_split(tmp_path):
    with pytest.raises(
        UserError, match="unknown split 'validation'; built-in datasets have: train, test"
    ):
        build_index("digits", tmp_path / "x.h5", split="validation")


def test_unknown_torchvision_dataset(tmp_path):
    with pytest.raises(
        UserError, match="unknown torchvision dataset 'imagenet'; valid: cifar10, cifar100"
    ):
        build_index("torchvision", tmp_path / "x.h5", name="imagenet", root=tmp_path)


def test_open_missing_index(tmp_path):
    with pytest.raises(UserError, match="index file not found: .*missing.h5"):
        open_index(tmp_path / "missing.h5")


def test_open_index_missing_a_dataset(make_index, tmp_path):
    path = shutil.copy(make_index([0, 1]), tmp_path / "broken.h5")
    with h5py.File(path, "a") as f:
        del f["labels"]
    with pytest.raises(UserError, match="broken.h5 is a corrupt index: dataset 'labels' missing"):
        open_index(path)
