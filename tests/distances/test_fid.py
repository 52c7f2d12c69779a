# SPDX-License-Identifier: MIT
from __future__ import annotations

import numpy as np
import pytest

from solo_diversity.distances.features import cached_features
from solo_diversity.distances.fid import fid, frechet_from_features
from solo_diversity.distances.samples import sample_dataset
from solo_diversity.errors import UserError


def numpy_frechet(x: np.ndarray, y: np.ndarray) -> float:
    """||mu_x - mu_y||^2 + Tr(S_x) + Tr(S_y) - 2 Tr((S_x S_y)^1/2), via symmetric eigh."""
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(s_x)
    root_x = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    # Tr((S_x S_y)^1/2) = sum sqrt(eig(S_x^1/2 S_y S_x^1/2))
    middle = np.linalg.eigvalsh(root_x @ s_y @ root_x)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(s_x) + np.trace(s_y) - 2 * trace_root)


@pytest.fixture
def datasets(make_dataset):
    return {
        name: sample_dataset(make_dataset(name, n=40, seed=seed, shift=shift))
        for name, seed, shift in [
            ("a", 0, 0.0),
            ("a_again", 5, 0.0),
            ("near", 0, 0.3),
            ("far", 0, 0.8),
        ]
    }


def test_fid_of_a_dataset_with_itself_is_zero(datasets, tiny):
    result = fid(datasets["a"], datasets["a"], tiny(layered=False))
    assert abs(result.fid) < 1e-8
    assert (result.n_a, result.n_b, result.extractor) == (40, 40, "tiny_cnn")


def test_fid_equals_an_independent_numpy_frechet(datasets, tiny):
    extractor = tiny(layered=False)
    for other in ("a_again", "near", "far"):
        result = fid(datasets["a"], datasets[other], extractor)
        fa = cached_features(datasets["a"], extractor).features.astype(np.float64)
        fb = cached_features(datasets[other], extractor).features.astype(np.float64)
        assert result.fid > 0
        assert result.fid == pytest.approx(numpy_frechet(fa, fb), rel=1e-6, abs=1e-10)


def test_fid_grows_with_the_colour_and_blur_shift(datasets, tiny):
    extractor = tiny(layered=False)
    same, near, far = (
        fid(datasets["a"], datasets[k], extractor).fid for k in ("a_again", "near", "far")
    )
    assert same < near < far
    assert near > 10 * same


def test_fid_is_symmetric_and_reuses_features(datasets, tiny):
    extractor = tiny(layered=False)
    ab = fid(datasets["a"], datasets["far"], extractor)
    ba = fid(datasets["far"], datasets["a"], extractor)
    assert ba.cached_a and ba.cached_b and not ab.cached_a
    assert ab.fid == pytest.approx(ba.fid, rel=1e-9)


def test_fid_needs_two_images():
    with pytest.raises(UserError, match="FID needs at least 2 readable images in dataset B, got 1"):
        frechet_from_features(np.zeros((3, 4)), np.zeros((1, 4)))
