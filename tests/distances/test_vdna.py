# SPDX-License-Identifier: MIT
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from solo_diversity.distances.features import LoaderSettings, image_loader
from solo_diversity.distances.samples import sample_dataset
from solo_diversity.distances.vdna import cached_vdna, ensure_ranges, vdna_distance
from solo_diversity.errors import UserError

BINS = 50


@pytest.fixture
def datasets(make_dataset):
    return {
        name: sample_dataset(make_dataset(name, n=24, seed=seed, shift=shift))
        for name, seed, shift in [
            ("a", 0, 0.0),
            ("a_again", 5, 0.0),
            ("near", 0, 0.3),
            ("far", 0, 0.8),
        ]
    }


@pytest.fixture
def extractor(tiny, tmp_path):
    return tiny(layered=True, ranges_path=tmp_path / "ranges.json")


def activations(sample, extractor) -> dict[str, np.ndarray]:
    """{layer: (C, B*h*w)} raw activations of every image of the sample."""
    out: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for batch in image_loader(sample, extractor, LoaderSettings(batch_size=7)):
            for layer, act in extractor.module(batch).items():
                out.setdefault(layer, []).append(
                    act.permute(1, 0, 2, 3).reshape(act.shape[1], -1).double().numpy()
                )
    return {layer: np.concatenate(chunks, axis=1) for layer, chunks in out.items()}


def numpy_emd(sample_a, sample_b, extractor, ranges) -> float:
    """Per-neuron histogram EMD averaged over neurons, from raw activations, in numpy."""
    acts_a, acts_b = activations(sample_a, extractor), activations(sample_b, extractor)
    emds = []
    for layer in acts_a:
        lo = np.array(list(ranges["mins_per_neuron"][layer].values())) * 1.2
        hi = np.array(list(ranges["maxs_per_neuron"][layer].values())) * 1.2
        mid, half = (lo + hi) / 2, (hi - lo) / 2 + 1e-8
        for k in range(len(lo)):
            hists = []
            for acts in (acts_a, acts_b):
                x = np.clip((acts[layer][k] - mid[k]) / half[k], -1, 1)
                counts, _ = np.histogram(x, bins=BINS, range=(-1, 1))
                hists.append(counts / counts.sum())
            emds.append(np.abs(np.cumsum(hists[0] - hists[1])).sum())
    return float(np.mean(emds))


def test_ranges_are_computed_once_from_the_reference_and_reused(datasets, extractor):
    ranges = ensure_ranges(extractor, datasets["a"])
    assert json.loads(extractor.ranges_path.read_text()) == ranges
    acts = activations(datasets["a"], extractor)
    for layer, values in acts.items():
        mins = np.array(list(ranges["mins_per_neuron"][layer].values()))
        np.testing.assert_allclose(mins, values.min(axis=1), rtol=1e-6, atol=1e-6)
    assert ensure_ranges(extractor, datasets["far"]) == ranges  # file wins over the new reference


def test_emd_of_a_dataset_with_itself_is_zero(datasets, extractor):
    result = vdna_distance(datasets["a"], datasets["a"], extractor, bins=BINS)
    assert result.emd == 0.0 and result.n_a == result.n_b == 24 and result.bins == BINS


def test_emd_is_symmetric(datasets, extractor):
    ab = vdna_distance(datasets["a"], datasets["far"], extractor, bins=BINS)
    ba = vdna_distance(datasets["far"], datasets["a"], extractor, bins=BINS)
    assert ab.emd > 0 and ab.emd == ba.emd


def test_emd_grows_with_the_shift(datasets, extractor):
    same, near, far = (
        vdna_distance(datasets["a"], datasets[k], extractor, bins=BINS).emd
        for k in ("a_again", "near", "far")
    )
    assert same < near < far


def test_emd_equals_an_independent_histogram_computation(datasets, extractor):
    ranges = ensure_ranges(extractor, datasets["a"])
    result = vdna_distance(datasets["a"], datasets["near"], extractor, bins=BINS)
    expected = numpy_emd(datasets["a"], datasets["near"], extractor, ranges)
    assert result.emd == pytest.approx(expected, rel=1e-4)


def test_vdnas_are_saved_beside_the_index_and_reused(datasets, extractor):
    ranges = ensure_ranges(extractor, datasets["a"])
    first, hit = cached_vdna(datasets["near"], extractor, ranges, bins=BINS)
    assert not hit
    saved = sorted(
        p.name for p in (datasets["near"].index.path.parent / "near.distances").iterdir()
    )
    assert len(saved) == 2 and saved[0].endswith(".json") and saved[1].endswith(".npz")
    calls = extractor.module.calls
    second, hit = cached_vdna(datasets["near"], extractor, ranges, bins=BINS)
    assert hit and extractor.module.calls == calls
    for layer in first.data:
        assert torch.equal(first.data[layer].long().cpu(), second.data[layer].long().cpu())


def test_too_few_bins_is_a_user_error(datasets, extractor):
    with pytest.raises(UserError, match="--bins must be at least 2, got 1"):
        vdna_distance(datasets["a"], datasets["a"], extractor, bins=1)
