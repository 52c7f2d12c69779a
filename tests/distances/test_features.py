# SPDX-License-Identifier: MIT
from __future__ import annotations

import numpy as np
import torch
from cleanfid.resize import build_resizer
from PIL import Image

from solo_diversity.data.decode import decode_image
from solo_diversity.distances.features import (
    IndexImages,
    cached_features,
    clean_resize,
    compute_features,
)
from solo_diversity.distances.samples import sample_dataset
from solo_diversity.index import build_index

SIZE = 24


def test_clean_resize_matches_clean_fid_exactly():
    pixels = np.random.default_rng(0).integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    ours = clean_resize(Image.fromarray(pixels), (299, 299))
    theirs = build_resizer("clean")(pixels)
    assert ours.dtype == np.float32 and ours.shape == (299, 299, 3)
    np.testing.assert_array_equal(ours, theirs)


def test_index_images_reads_from_the_index_and_normalises(make_dataset):
    sample = sample_dataset(make_dataset("a", n=4))
    images = IndexImages(sample, (SIZE, SIZE), 1 / 255, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    img = decode_image(sample.index.read_bytes(2))
    expected = (clean_resize(img, (SIZE, SIZE)).transpose(2, 0, 1) / 255 - 0.5) / 0.25
    np.testing.assert_allclose(images[2].numpy(), expected, rtol=1e-6, atol=1e-6)


def test_feature_cache_is_hit_on_the_second_call(make_dataset, tmp_path, tiny):
    sample = sample_dataset(make_dataset("a", n=20), max_samples=15, seed=1)
    extractor = tiny(layered=False)
    first = cached_features(sample, extractor)
    calls = extractor.module.calls
    assert not first.from_cache and first.features.shape == (15, 16) and calls > 0
    assert first.path.parent == sample.index.path.parent / "a.distances" and first.path.exists()
    second = cached_features(sample, extractor)
    assert second.from_cache and second.path == first.path
    assert extractor.module.calls == calls  # nothing re-embedded
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(first.features, compute_features(sample, extractor))
    # another cap or another extractor's weights gets its own file
    assert (
        cached_features(sample_dataset(sample.index, max_samples=10), extractor).path != first.path
    )
    assert cached_features(sample, tiny(layered=False, seed=3)).path != first.path


def test_cache_root_overrides_the_location(make_dataset, tmp_path, tiny):
    sample = sample_dataset(make_dataset("a", n=6))
    result = cached_features(sample, tiny(layered=False), cache_root=tmp_path / "cache")
    assert result.path.parent.parent == tmp_path / "cache"


def test_unreadable_images_are_skipped_and_counted(tmp_path, tiny):
    folder = tmp_path / "broken"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    (folder / "bad.png").write_bytes(b"not a png")
    sample = sample_dataset(build_index("flat", tmp_path / "broken.h5", root=folder, embed=True))
    result = cached_features(sample, tiny(layered=False))
    assert result.num_requested == 6 and result.num_unreadable == 1
    assert result.features.shape == (5, 16)
    assert torch.isfinite(torch.from_numpy(result.features)).all()
