# SPDX-License-Identifier: MIT
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from solo_diversity.data import (
    ClassificationDataset,
    MultiViewTransform,
    PretrainDataset,
    ReadCounter,
    decode_image,
    eval_transform,
    parse_augmentations,
)
from solo_diversity.errors import UserError

ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


def _views(large=8, small=4):
    specs = parse_augmentations(
        [{"crop_size": large, "num_crops": 2}, {"crop_size": small, "num_crops": 2}]
    )
    return MultiViewTransform(specs, ZERO, ONE)


def test_items_are_solo_learn_triples(build_subset, noise_layout):
    subset = build_subset(noise_layout(2, 3))
    ds = PretrainDataset(subset, _views())
    assert len(ds) == 6
    labels = subset.labels()
    for i in range(len(ds)):
        position, crops, target = ds[i]
        assert position == int(subset.positions[i])
        assert target == int(labels[i])
        name = subset.index.entry_name(position)
        assert name.startswith(f"class{target}/")
        assert [tuple(c.shape) for c in crops] == [(3, 8, 8)] * 2 + [(3, 4, 4)] * 2
    assert ds.counter.loaded == 6 and ds.counter.bad == 0


def test_unlabeled_target_is_minus_one(build_subset, images, tmp_path):
    from solo_diversity.index import build_index, open_index, select_subset

    root = tmp_path / "flat"
    root.mkdir()
    for i in range(3):
        (root / f"{i}.png").write_bytes(images.encode(images.noise_rgb((6, 6), i), "PNG"))
    out = build_index("flat", tmp_path / "flat.h5", root=root, dataset="custom")
    ds = PretrainDataset(select_subset(open_index(out), -1), _views())
    assert {ds[i][2] for i in range(3)} == {-1}


@pytest.mark.parametrize("embed", [False, True])
def test_bad_images_counted_and_substituted(build_subset, images, caplog, embed):
    bad_bytes = images.bad_files()
    subset = build_subset({"a": images.good_files() | bad_bytes}, seed=3, embed=embed)
    index = subset.index
    bad = [index.read_bytes(int(p)) in bad_bytes.values() for p in subset.positions]
    n = len(bad)
    # an embedded index drops the zero-byte file at build time
    assert (n, sum(bad)) == ((6, 2) if embed else (7, 3))

    ds = PretrainDataset(subset, _views())
    caplog.clear()
    caplog.set_level(logging.WARNING, logger="solo_diversity.data.datasets")
    expected_bad = 0
    for i in range(n):
        run = 0  # bad entries tried before the next readable one, wrapping
        while bad[(i + run) % n]:
            run += 1
        expected_bad += run
        position, crops, _ = ds[i]
        assert position == int(subset.positions[(i + run) % n])
        assert len(crops) == 4
    assert ds.counter.bad == expected_bad
    assert ds.counter.loaded == n

    warned = [r.getMessage() for r in caplog.records if r.name.startswith("solo_diversity.data")]
    assert len(warned) == sum(bad)  # once per bad entry, however often it is read
    names = {index.entry_name(int(p)) for p, b in zip(subset.positions, bad, strict=True) if b}
    assert {w.split()[2] for w in warned} == names
    if not embed:
        assert names == {"a/bad_zero.jpg", "a/bad_truncated.jpg", "a/bad_text.png"}
    for _ in range(2):
        ds[bad.index(True)]
    assert len(caplog.records) == len(warned)

    for pos, is_bad in zip(subset.positions, bad, strict=True):
        if not is_bad:
            assert decode_image(index.read_bytes(int(pos))).mode == "RGB"


def test_all_unreadable_is_a_user_error(build_subset, images):
    subset = build_subset({"a": images.bad_files()})
    with pytest.raises(UserError, match="none of the 3 images in the subset"):
        PretrainDataset(subset, _views())[0]


def test_shared_counter_is_shared(build_subset, noise_layout):
    subset = build_subset(noise_layout(1, 2))
    counter = ReadCounter()
    PretrainDataset(subset, _views(), counter)[0]
    ClassificationDataset(subset, eval_transform(8, ZERO, ONE), counter)[1]
    assert counter.loaded == 2 and counter.bad_fraction == 0.0


def test_classification_dataset(build_subset, noise_layout):
    subset = build_subset(noise_layout(2, 2, size=(40, 30)))
    ds = ClassificationDataset(subset, eval_transform(16, ZERO, ONE))
    x, y = ds[3]
    assert tuple(x.shape) == (3, 16, 16) and x.dtype == torch.float32
    assert y == int(subset.labels()[3])


def test_eval_transform_small_is_identity_at_native_size():
    arr = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = eval_transform(32, ZERO, ONE)(Image.fromarray(arr))
    assert torch.allclose(out, torch.from_numpy(arr).permute(2, 0, 1).float() / 255, atol=1e-6)


def test_eval_transform_imagenet_style():
    t = eval_transform(224, ZERO, ONE)
    assert t.transforms[0].size == [256]
    assert tuple(t(Image.new("RGB", (300, 260))).shape) == (3, 224, 224)
    with pytest.raises(UserError, match="crop_fraction must be in"):
        eval_transform(224, ZERO, ONE, crop_fraction=1.5)
