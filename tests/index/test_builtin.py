# SPDX-License-Identifier: MIT
"""Built-in datasets: digits (sklearn), Fashion-MNIST (Debian IDX files), torchvision offline."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from solo_diversity.errors import UserError
from solo_diversity.index import build_index, open_index
from solo_diversity.index.builtin import (
    FASHION_MNIST_CLASSES,
    TORCHVISION_DATASETS,
    fashion_mnist_source,
    online,
    read_idx,
)
from tests.index.idx_files import write_idx


@pytest.fixture(scope="module")
def digits_indexes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    return {
        (split, seed): open_index(
            build_index("digits", folder / f"{split}-{seed}.h5", split=split, seed=seed)
        )
        for split in ("train", "test")
        for seed in (0, 1)
    }


def test_digits_split_sizes_and_disjoint_rows(digits_indexes):
    train, test = digits_indexes["train", 0], digits_indexes["test", 0]
    assert len(train) + len(test) == 1797
    assert len(test) == 359  # round(0.2 * n_c) per class
    with_positions = [set(i.source_positions().tolist()) for i in (train, test)]
    assert with_positions[0].isdisjoint(with_positions[1])
    assert with_positions[0] | with_positions[1] == set(range(1797))
    assert np.bincount(test.labels()).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]


def test_digits_split_does_not_depend_on_the_index_seed(digits_indexes):
    for split in ("train", "test"):
        a, b = digits_indexes[split, 0], digits_indexes[split, 1]
        rows_a = a.source_positions()
        rows_b = b.source_positions()
        assert sorted(rows_a.tolist()) == sorted(rows_b.tolist())
        assert rows_a.tolist() != rows_b.tolist()
        assert a.fingerprint != b.fingerprint


def test_digits_images_are_8x8_png_scaled_to_255(digits_indexes):
    from sklearn.datasets import load_digits

    index = digits_indexes["train", 0]
    assert index.class_names == [str(i) for i in range(10)] and index.kind == "bytes"
    digits = load_digits()
    row = int(index.source_positions(range(0, 1))[0])
    image = Image.open(io.BytesIO(index.read_bytes(0)))
    assert image.format == "PNG" and image.size == (8, 8) and image.mode == "L"
    expected = np.round(digits.images[row] * 255 / 16).astype(np.uint8)
    assert np.array_equal(np.asarray(image), expected)
    assert int(index.labels()[0]) == int(digits.target[row])


def test_val_is_an_alias_of_test(tmp_path):
    index = open_index(build_index("digits", tmp_path / "v.h5", split="val"))
    assert len(index) == 359 and index.split == "val"


@pytest.fixture
def fashion_root(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    labels = np.arange(30, dtype=np.uint8) % 10
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    return tmp_path, images, labels


def test_fashion_mnist_index_from_idx_files(tmp_path, fashion_root):
    root, images, labels = fashion_root
    out = build_index("fashion_mnist", tmp_path / "fm.h5", split="test", seed=3, root=root)
    index = open_index(out)
    assert len(index) == 30 and index.class_names == list(FASHION_MNIST_CLASSES)
    assert np.bincount(index.labels()).tolist() == [3] * 10
    row = int(index.source_positions(np.array([5]))[0])
    decoded = np.asarray(Image.open(io.BytesIO(index.read_bytes(5))))
    assert decoded.shape == (28, 28) and np.array_equal(decoded, images[row])
    assert int(index.labels(np.array([5]))[0]) == int(labels[row])


def test_fashion_mnist_source_reads_a_given_root(fashion_root):
    root, images, labels = fashion_root
    source = fashion_mnist_source(root=root, split="test")
    assert source.description == f"fashion_mnist:{root}" and source.kind == "bytes"
    first_png, first_label = next(iter(source.entries))
    assert first_label == int(labels[0]) and first_png.startswith(b"\x89PNG")
    assert np.array_equal(read_idx(root / "t10k-images-idx3-ubyte.gz"), images)


def test_read_idx_rejects_other_files(tmp_path):
    (tmp_path / "x-ubyte").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(UserError, match="is not an unsigned-byte IDX file"):
        read_idx(tmp_path / "x-ubyte")


@pytest.mark.skipif(online("www.cs.toronto.edu"), reason="only meaningful offline")
@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "cifar100",
            "CIFAR-100 is not available offline: place cifar-100-python.tar.gz in {root} "
            "(from https://www.cs.toronto.edu/~kriz/)",
        ),
        (
            "cifar10",
            "CIFAR-10 is not available offline: place cifar-10-python.tar.gz in {root} "
            "(from https://www.cs.toronto.edu/~kriz/)",
        ),
    ],
)
def test_torchvision_offline_fails_fast_with_one_line(tmp_path, name, message):
    import torchvision  # noqa: F401  (import time is not the failure time)

    root = tmp_path / "raw"
    started = time.perf_counter()
    with pytest.raises(UserError) as err:
        build_index("torchvision", tmp_path / "c.h5", name=name, root=root)
    assert time.perf_counter() - started < 10
    assert str(err.value) == message.format(root=root)
    assert not (tmp_path / "c.h5").exists()


def test_torchvision_specs_cover_the_builtin_datasets():
    assert set(TORCHVISION_DATASETS) == {"cifar10", "cifar100", "fashion_mnist"}
