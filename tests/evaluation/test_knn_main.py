# SPDX-License-Identifier: MIT
"""``main_knn.py`` on a tiny pretraining checkpoint: the sweep's result lines and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from solo_diversity.data import dataset_stats
from solo_diversity.errors import UserError
from solo_diversity.evaluation.features import ProbeData, extract_features, load_backbone
from solo_diversity.evaluation.knn_run import run_knn
from solo_diversity.index import open_index, select_subset
from solo_diversity.methods.knn import knn_accuracy
from solo_diversity.run.pretrain import run_pretrain
from tests import zygote
from tests.conftest import CONFIG_DIR, REPO, TINY_RUN
from tests.evaluation.probe_inputs import knn_cfg

SMALL = [
    "optimizer.batch_size=32",
    "budget.C=320",
    "+backbone.kwargs.width=8",
    "data.val_path=null",
]


@pytest.fixture(scope="module")
def checkpoint(digits_indexes, tmp_path_factory) -> Path:
    """A 10-step SimCLR run on the digits, without validation."""
    root = tmp_path_factory.mktemp("knn_run")
    overrides = [
        f"data.train_path={digits_indexes['train']}",
        f"data.val_path={digits_indexes['test']}",
        f"checkpoint.dir={root / 'trained_models'}",
        "data.num_workers=0",
        *SMALL,
        *TINY_RUN,
    ]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        cfg = compose(config_name="simclr_div", overrides=overrides)
    ckpt = run_pretrain(cfg).checkpoint
    assert ckpt is not None
    return ckpt


def main_knn(cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(REPO / "main_knn.py"), "--config-name", "knn_div", *overrides]
    return zygote.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_sweep_writes_one_line_per_setting(checkpoint, digits_indexes, tmp_path):
    proc = main_knn(
        tmp_path,
        f"pretrained_checkpoint_dir='{checkpoint.parent}'",  # the run folder, as upstream
        f"val_data_path={digits_indexes['test']}",  # the run validated on nothing
        "k=[5,20]",
        "temperature=[0.07,0.2]",
        "distance_function=[cosine,euclidean]",
        "feature_type=[backbone,projector]",
        "num_workers=0",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(x) for x in (tmp_path / "results" / "knn.jsonl").read_text().splitlines()]
    # 2 feature types x 2 k x (2 temperatures for cosine + 1 euclidean run without T)
    assert len(lines) == 12
    assert [
        (r["feature_type"], r["k"], r["distance_function"], r["temperature"]) for r in lines[:3]
    ] == [
        ("backbone", 5, "cosine", 0.07),
        ("backbone", 5, "cosine", 0.2),
        ("backbone", 5, "euclidean", None),
    ]
    assert {
        k: lines[0][k]
        for k in (
            "method",
            "dataset",
            "backbone",
            "C",
            "C_eff",
            "N",
            "fraction",
            "seed",
            "n_train",
            "n_test",
        )
    } == {
        "method": "simclr",
        "dataset": "digits",
        "backbone": "small_cnn",
        "C": 320,
        "C_eff": 320,
        "N": 1438,
        "fraction": -1,
        "seed": 5,
        "n_train": 1438,
        "n_test": 359,
    }
    assert all(r["checkpoint"] == str(checkpoint) for r in lines)
    assert all(30.0 < r["acc1"] <= r["acc5"] <= 100.0 for r in lines)  # chance is 10%
    assert proc.stdout.count("kNN ") == 12
    # the backbone numbers are those of an independent extraction of the same two splits
    model = load_backbone(checkpoint, "small_cnn", small_input_stem=True, kwargs={"width": 8})
    probe = ProbeData(8, *dataset_stats("digits"))
    feats = {
        s: extract_features(model, probe.batches(select_subset(open_index(p), -1), train=False))
        for s, p in digits_indexes.items()
    }
    expected = knn_accuracy(*feats["train"], *feats["test"], k=20, temperature=0.2)
    (line,) = [
        r for r in lines if (r["feature_type"], r["k"], r["temperature"]) == ("backbone", 20, 0.2)
    ]
    assert (line["acc1"], line["acc5"]) == tuple(round(a, 3) for a in expected)


def test_a_missing_checkpoint_is_one_line_and_exit_2(tmp_path):
    proc = main_knn(tmp_path, f"pretrained_checkpoint_dir={tmp_path / 'nope'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: pretrained_checkpoint_dir={tmp_path / 'nope'} does not exist"
    ]


def test_a_folder_without_checkpoints(tmp_path):
    with pytest.raises(UserError, match=r"^pretrained_checkpoint_dir=.* holds no .ckpt file$"):
        run_knn(knn_cfg([f"pretrained_checkpoint_dir={tmp_path}"]))


def test_unset_checkpoint():
    with pytest.raises(UserError, match=r"^set pretrained_checkpoint_dir=<run folder or \.ckpt"):
        run_knn(knn_cfg([]))


def test_unknown_distance(checkpoint):
    with pytest.raises(
        UserError,
        match=r"^distance function 'cityblock' is unknown; choose one "
        r"of cosine, euclidean$",
    ):
        run_knn(
            knn_cfg(
                [
                    f"pretrained_checkpoint_dir='{checkpoint}'",
                    "distance_function=[cosine,cityblock]",
                ]
            )
        )


def test_unknown_feature_type(checkpoint):
    with pytest.raises(
        UserError,
        match=r"^feature_type 'head' is unknown; choose one of "
        r"backbone, projector$",
    ):
        run_knn(knn_cfg([f"pretrained_checkpoint_dir='{checkpoint}'", "feature_type=head"]))


def test_a_run_without_validation_data_needs_val_data_path(checkpoint):
    with pytest.raises(UserError, match=r"^set train_data_path and val_data_path \(the run has"):
        run_knn(knn_cfg([f"pretrained_checkpoint_dir='{checkpoint}'"]))


def test_bad_k(checkpoint):
    with pytest.raises(UserError, match=r"^k=\[0\] must be >= 1 and temperature=\[0.07\] > 0$"):
        run_knn(knn_cfg([f"pretrained_checkpoint_dir='{checkpoint}'", "k=0"]))
