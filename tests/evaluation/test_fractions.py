# SPDX-License-Identifier: MIT
"""Label fractions: stratified, nested and seeded by the index, the same in both probe modes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from solo_diversity.evaluation.linear import LABEL_FRACTIONS, probe_subset, run_linear
from solo_diversity.index import open_index


def test_label_subsets_are_stratified_and_nested(digits_indexes):
    data = {"dataset": "digits", "train_path": str(digits_indexes["train"]), "format": "h5"}
    labels = open_index(digits_indexes["train"]).labels()
    per_class = np.bincount(labels)
    previous: set[int] = set()
    for fraction in LABEL_FRACTIONS:
        subset = probe_subset(data, "train", fraction, 0, stratified=True)
        positions = set(np.asarray(subset.positions).tolist())
        assert previous <= positions  # 5% inside 10% inside 50% inside 100%
        counts = np.bincount(labels[np.asarray(sorted(positions))], minlength=10)
        assert counts.tolist() == [int(fraction * n + 0.5) for n in per_class]
        previous = positions


@pytest.mark.parametrize("mode", ["protocol", "features"])
def test_both_modes_probe_the_same_labelled_subsets(linear_cfg, tmp_path, digits_indexes, mode):
    per_class = np.bincount(open_index(digits_indexes["train"]).labels())
    for fraction in (0.05, 0.1):
        run_linear(
            linear_cfg([f"probe.mode={mode}", f"data.label_fraction={fraction}", "max_epochs=1"])
        )
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [line["n_labelled"] for line in lines] == [
        sum(int(f * n + 0.5) for n in per_class) for f in (0.05, 0.1)
    ]
    assert {line["probe_mode"] for line in lines} == {mode}
    assert all(line["n_test"] == 359 and line["label_fraction"] in (0.05, 0.1) for line in lines)
