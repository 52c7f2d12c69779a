# SPDX-License-Identifier: MIT
"""The provenance of a result line: the sweep's cell and pretraining time, the code, the device."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import solo_diversity
from solo_diversity.evaluation.provenance import SWEEP_ENV, device_name, git_commit, provenance
from solo_diversity.experiments.runner import WALL_TIME, add_pretrain_seconds, pretrain_seconds


def test_outside_a_git_checkout_the_commit_is_none(tmp_path):
    assert git_commit(tmp_path) is None


def test_the_package_checkout_gives_a_full_commit_or_none():
    commit = git_commit()
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)


def test_a_probe_by_hand_has_no_cell_and_the_rest(monkeypatch):
    for var in SWEEP_ENV.values():
        monkeypatch.delenv(var, raising=False)
    fields = provenance("cpu")
    assert {k: fields[k] for k in SWEEP_ENV} == dict.fromkeys(SWEEP_ENV)
    assert datetime.fromisoformat(fields["timestamp"]).utcoffset() == timedelta(0)
    assert fields["version"] == solo_diversity.__version__
    assert fields["device"] == "cpu" == device_name("auto")


def test_a_sweep_probe_reads_its_cell_from_the_environment(monkeypatch):
    values = {"table": "t1", "cell": "simclr-f0.1", "run_key": "abc123", "pretrain_seconds": "12.5"}
    for key, value in values.items():
        monkeypatch.setenv(SWEEP_ENV[key], value)
    fields = provenance("cpu")
    assert [fields[k] for k in values] == ["t1", "simclr-f0.1", "abc123", 12.5]


def test_pretraining_time_adds_up_over_resumes(tmp_path):
    folder = tmp_path / "runs" / "key" / "seed0"
    assert pretrain_seconds(folder) is None
    assert add_pretrain_seconds(folder, 10.004) == 10.0
    assert add_pretrain_seconds(folder, 5.5) == 15.5
    assert pretrain_seconds(folder) == 15.5
    (folder / WALL_TIME).write_text("not json")
    assert pretrain_seconds(folder) is None  # a damaged file: unknown, not a crash
