# SPDX-License-Identifier: MIT
"""ensure_index: built-in datasets built on demand, existing indexes checked, folders cached."""

from __future__ import annotations

import logging

import pytest

from solo_diversity.errors import UserError
from solo_diversity.index import ensure_index, open_index
from solo_diversity.index.resolve import cached_index_path


def test_builds_missing_digits_then_reuses_it(tmp_path, caplog):
    target = tmp_path / "data" / "digits_train.h5"
    with caplog.at_level(logging.INFO, logger="solo_diversity.index"):
        assert ensure_index("digits", target, split="train", seed=4) == target
    assert "is missing; building digits train with seed 4" in caplog.text
    first = open_index(target)
    assert first.seed == 4 and len(first) == 1438
    stamp = target.stat().st_mtime_ns
    assert ensure_index("digits", target, split="train", seed=4) == target
    assert target.stat().st_mtime_ns == stamp
    assert open_index(target).fingerprint == first.fingerprint


def test_existing_index_is_checked_against_the_dataset(tmp_path):
    target = ensure_index("digits", tmp_path / "d.h5", split="test")
    with pytest.raises(
        UserError, match="holds dataset 'digits', but the config asks for 'cifar100'"
    ):
        ensure_index("cifar100", target, split="test")


def test_missing_index_of_unknown_dataset(tmp_path):
    with pytest.raises(
        UserError, match="'imagenet100' is not built in .*build it with `solo-div index build`"
    ):
        ensure_index("imagenet100", tmp_path / "in100.h5", split="train")


def test_unknown_data_format(tmp_path):
    with pytest.raises(
        UserError, match="unknown data format 'tfrecord'; valid: h5, image_folder, dali"
    ):
        ensure_index("digits", tmp_path / "d.h5", split="train", data_format="tfrecord")


def test_folder_given_as_h5_path(tmp_path):
    with pytest.raises(UserError, match="is a folder; set data.format=image_folder"):
        ensure_index("digits", tmp_path, split="train")


def test_image_folder_is_indexed_into_the_cache_dir(image_tree, tmp_path):
    cache = tmp_path / "cache"
    path = ensure_index(
        "pets", image_tree, split="train", seed=2, data_format="image_folder", cache_dir=cache
    )
    assert path.parent == cache and path.name.startswith("pets-train-seed2-")
    assert path == cached_index_path(
        image_tree, dataset="pets", split="train", seed=2, cache_dir=cache
    )
    index = open_index(path, expected_dataset="pets")
    assert index.class_names == ["cat", "dog", "fox"] and index.seed == 2
    stamp = path.stat().st_mtime_ns
    assert (
        ensure_index(
            "pets", image_tree, split="train", seed=2, data_format="image_folder", cache_dir=cache
        )
        == path
    )
    assert path.stat().st_mtime_ns == stamp
    other = ensure_index(
        "pets", image_tree, split="val", seed=2, data_format="image_folder", cache_dir=cache
    )
    assert other != path  # keyed by split, so train and val never collide


def test_cache_key_depends_on_the_folder(tmp_path):
    a = cached_index_path(tmp_path / "a", dataset="x", split="train", seed=0, cache_dir=tmp_path)
    b = cached_index_path(tmp_path / "b", dataset="x", split="train", seed=0, cache_dir=tmp_path)
    assert a != b


def test_image_folder_that_does_not_exist(tmp_path):
    with pytest.raises(UserError, match="needs an image folder, but .*nope is not one"):
        ensure_index(
            "pets", tmp_path / "nope", split="train", data_format="image_folder", cache_dir=tmp_path
        )


def test_solo_learn_cifar_folder_is_torchvisions_download_root(tmp_path):
    root = tmp_path / "datasets"  # solo-learn's cifar YAML: train_path ./datasets, image_folder
    with pytest.raises(UserError, match=rf"place cifar-10-python.tar.gz in {root}"):
        ensure_index(
            "cifar10", root, split="train", data_format="image_folder", cache_dir=tmp_path / "cache"
        )
    assert root.is_dir()


def test_dali_format_reads_an_index_file_like_h5(tmp_path):
    built = ensure_index("digits", tmp_path / "d.h5", split="test")
    assert ensure_index("digits", built, split="test", data_format="dali") == built
