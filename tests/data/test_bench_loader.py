# SPDX-License-Identifier: MIT
"""The loader benchmark: baseline (a) is solo-learn's pipeline, the small corpus, a tiny run."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms as T

from bench.corpus import build_small_corpus, small_corpus_labels
from bench.loader import main
from bench.loader_baseline import (
    PRESETS,
    ArrayCIFAR,
    SoloEqualization,
    SoloGaussianBlur,
    SoloSolarization,
    solo_dataset,
    solo_multi_view,
    with_index,
)
from bench.loader_report import median_of_rounds
from bench.loader_rows import Budget, Row, timed_rate
from solo_diversity.data import dataset_stats, parse_augmentations
from solo_diversity.index import open_index

# Upstream's YAML values, per view: (crop, crops, (b, c, s, h), blur, solarization), written out
# from scripts/pretrain/*/augmentations/*.yaml (every view: rrc 0.08-1.0, jitter prob 0.8,
# grayscale 0.2, equalization 0, flip 0.5).
STRONG, MILD = (0.8, 0.8, 0.8, 0.2), (0.4, 0.4, 0.2, 0.1)
UPSTREAM = {
    "sym224": ("imagenet100", [(224, 2, STRONG, 0.5, 0.0)]),
    "asym224": ("imagenet100", [(224, 1, MILD, 1.0, 0.0), (224, 1, MILD, 0.1, 0.2)]),
    "multicrop": ("imagenet100", [(224, 2, STRONG, 0.5, 0.0), (96, 6, STRONG, 0.0, 0.0)]),
    "sym32": ("cifar10", [(32, 2, STRONG, 0.5, 0.0)]),
    "asym32": ("cifar10", [(32, 1, MILD, 0.0, 0.0), (32, 1, MILD, 0.0, 0.2)]),
}


def _upstream_steps(crop, jitter, blur, solarization, mean, std):
    """The step list of upstream's build_transform_pipeline, steps with prob 0 left out."""
    steps = [
        ("RandomResizedCrop", crop, (0.08, 1.0), T.InterpolationMode.BICUBIC),
        ("ColorJitter", 0.8, jitter),
        ("RandomGrayscale", 0.2),
    ]
    if blur:
        steps.append(("GaussianBlur", blur, (0.1, 2.0)))
    if solarization:
        steps.append(("Solarization", solarization))
    steps += [("RandomHorizontalFlip", 0.5), ("ToTensor",), ("Normalize", mean, std)]
    return steps


def _describe(step):
    if isinstance(step, T.RandomResizedCrop):
        return ("RandomResizedCrop", step.size[0], tuple(step.scale), step.interpolation)
    if isinstance(step, T.RandomApply):
        (inner,) = step.transforms
        if isinstance(inner, T.ColorJitter):
            hue = inner.hue[1]
            strengths = (inner.brightness[1] - 1, inner.contrast[1] - 1, inner.saturation[1] - 1)
            return ("ColorJitter", step.p, tuple(round(v, 6) for v in (*strengths, hue)))
        if isinstance(inner, SoloGaussianBlur):
            return ("GaussianBlur", step.p, inner.sigma)
        if isinstance(inner, SoloSolarization):
            return ("Solarization", step.p)
        if isinstance(inner, SoloEqualization):
            return ("Equalization", step.p)
    if isinstance(step, T.RandomGrayscale | T.RandomHorizontalFlip):
        return (type(step).__name__, step.p)
    if isinstance(step, T.Normalize):
        return ("Normalize", tuple(step.mean), tuple(step.std))
    return (type(step).__name__,)


@pytest.mark.parametrize("name", list(UPSTREAM))
def test_baseline_steps_are_upstreams(name):
    dataset, views = UPSTREAM[name]
    preset = PRESETS[name]
    assert preset.dataset == dataset
    mean, std = dataset_stats(dataset)
    transform = solo_multi_view(
        parse_augmentations([dict(a) for a in preset.augmentations]), mean, std
    )
    assert [n for _, n in transform.pipelines] == [v[1] for v in views]
    for (compose, _), (crop, _, jitter, blur, sol) in zip(transform.pipelines, views, strict=True):
        assert isinstance(compose, T.Compose)
        got = [_describe(step) for step in compose.transforms]
        assert got == _upstream_steps(crop, jitter, blur, sol, tuple(mean), tuple(std))


def test_blur_is_pils_with_pythons_random():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8))
    random.seed(3)
    got = SoloGaussianBlur()(img)
    random.seed(3)
    radius = random.uniform(0.1, 2.0)
    assert np.array_equal(np.asarray(got), np.asarray(img.filter(ImageFilter.GaussianBlur(radius))))
    assert np.array_equal(np.asarray(SoloSolarization()(img)), np.asarray(ImageOps.solarize(img)))
    assert np.array_equal(np.asarray(SoloEqualization()(img)), np.asarray(ImageOps.equalize(img)))


def test_datasets_return_index_views_target(tmp_path):
    data = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), np.uint8)
    preset = PRESETS["sym32"]
    views = solo_multi_view(
        parse_augmentations([dict(a) for a in preset.augmentations]), *dataset_stats("cifar10")
    )
    item = solo_dataset(preset, views, array=data, labels=np.array([5, 6, 7, 8]))[2]
    assert item[0] == 2 and item[2] == 7
    assert [tuple(v.shape) for v in item[1]] == [(3, 32, 32)] * 2
    raw = with_index(ArrayCIFAR)(data, [0] * 4, lambda img: np.asarray(img))[1]
    assert np.array_equal(raw[1], data[1])
    (tmp_path / "c0").mkdir()
    Image.fromarray(data[0]).save(tmp_path / "c0" / "x.jpg")
    folder = solo_dataset(PRESETS["sym224"], views, folder=tmp_path)
    assert folder[0][0] == 0 and folder[0][2] == 0 and len(folder[0][1]) == 2


def test_small_corpus_index_matches_array(tmp_path):
    index_path, npy_path = build_small_corpus(tmp_path / "small", num_images=40, seed=2)
    images, labels = np.load(npy_path), small_corpus_labels(npy_path)
    assert images.shape == (40, 32, 32, 3) and images.dtype == np.uint8
    assert images.std() > 10  # photo content, not a flat image
    index = open_index(index_path)
    assert len(index) == 40
    rows = index.source_positions()
    assert sorted(rows.tolist()) == list(range(40))
    for position, row in enumerate(rows):
        pixels = np.asarray(Image.open(io.BytesIO(index.read_bytes(position))))
        assert np.array_equal(pixels, images[row])
    assert np.array_equal(index.labels(), labels[rows])
    stamp = npy_path.stat().st_mtime_ns
    assert build_small_corpus(tmp_path / "small", num_images=40, seed=2) == (index_path, npy_path)
    assert npy_path.stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_tiny_run_writes_every_row(tmp_path):
    out = tmp_path / "bench.json"
    main(
        [
            "--presets",
            "sym32",
            "--num-small",
            "96",
            "--batch-size-32",
            "32",
            "--workers",
            "0",
            "--min-images",
            "32",
            "--min-seconds",
            "0",
            "--max-seconds",
            "2",
            "--corpus-root",
            str(tmp_path),
            "--out",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    assert {"machine", "settings", "presets"} <= set(result)
    rows = {r["key"]: r for r in result["presets"]["sym32"]["rows"]}
    assert {"a", "b", "b_fast", "e"} <= set(rows)
    assert {"c_first", "c_later"} <= set(rows) or "c" in rows
    gpu = {"d_first", "d_later", "e_gpu"} if torch.cuda.is_available() else {"d"}
    assert gpu <= set(rows)
    assert rows["a"]["ratio_to_a"] == 1.0
    for key in ("b", "b_fast"):
        assert rows[key]["images_per_s"] > 0 and rows[key]["ratio_to_a"] > 0
    for row in rows.values():
        assert (row["images_per_s"] is None) == (row["ratio_to_a"] is None)
        assert row["images_per_s"] is not None or row["note"]
    (target,) = result["presets"]["sym32"]["targets"]
    assert target["row"] == "e" and target["wanted"] == 10.0


def test_rounds_give_the_median_and_warmup_needs_a_batch_after_it():
    rounds = [[Row("a", "a", r), Row("c", "c", None, "no DALI")] for r in (3.0, 1.0, 2.0)]
    (a, c) = median_of_rounds(rounds)
    assert a.images_per_s == 2.0 and a.rounds == (3.0, 1.0, 2.0)
    assert c.images_per_s is None and c.note == "no DALI"
    batches = [[list(range(4))]] * 3
    assert timed_rate(lambda epoch: batches, Budget(8, 0.0, 1.0), warmup=1) > 0
    with pytest.raises(ValueError, match="warm-up"):
        timed_rate(lambda epoch: batches, Budget(8, 0.0, 1.0), warmup=3)
