# SPDX-License-Identifier: MIT
"""A checkpoint that solo-learn's own main_pretrain.py wrote on two GPUs runs through main_knn.py
and main_linear.py on this CPU: the run's machine settings never override this machine's.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from solo_diversity.config.linear import resolve_linear
from solo_diversity.config.probe import LINEAR_COMMAND_LINE_KEYS, added_key_overrides
from solo_diversity.evaluation.features import MACHINE_KEYS, read_run_args
from solo_diversity.evaluation.knn_run import KNN_COMMAND_LINE_KEYS
from solo_diversity.evaluation.linear import trainer_kwargs
from tests import zygote
from tests.conftest import REPO
from tests.evaluation.probe_inputs import image_folder
from tests.evaluation.solo_learn_run import write_run


@pytest.fixture(scope="module")
def solo_checkpoint(digits_indexes, tmp_path_factory) -> Path:
    """solo-learn's run folder of an ImageNet-100-style image-folder run (6 + 3 digits a class)."""
    root = tmp_path_factory.mktemp("solo_learn")
    train = image_folder(digits_indexes["train"], root / "imagenet-100" / "train", 6)
    val = image_folder(digits_indexes["test"], root / "imagenet-100" / "val", 3)
    return write_run(root, train, val)


def run_script(script: str, cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return zygote.run(
        [sys.executable, str(REPO / script), *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_main_knn_reads_a_checkpoint_that_solo_learn_wrote(solo_checkpoint, tmp_path):
    # args.json says dali.device: gpu, accelerator: gpu; +dali.device=cpu is what the old error
    # advised, and works (as does dali.device=cpu)
    results = tmp_path / "knn.jsonl"
    proc = run_script(
        "main_knn.py",
        tmp_path,
        "--config-name",
        "knn_div",
        f"pretrained_checkpoint_dir='{solo_checkpoint.parent}'",
        "num_workers=0",
        "feature_type=[backbone,projector]",
        "+dali.device=cpu",
        f"results={results}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    assert [(r["feature_type"], r["distance_function"]) for r in lines] == [
        ("backbone", "cosine"),
        ("backbone", "euclidean"),
        ("projector", "cosine"),
        ("projector", "euclidean"),
    ]
    assert {
        (r["method"], r["dataset"], r["backbone"], r["n_train"], r["n_test"], r["checkpoint"])
        for r in lines
    } == {("simclr", "imagenet100", "resnet18", 60, 30, str(solo_checkpoint))}
    assert all(0 <= r["acc1"] <= r["acc5"] <= 100 for r in lines)


def test_main_linear_reads_a_checkpoint_that_solo_learn_wrote(solo_checkpoint, tmp_path):
    results = tmp_path / "linear.jsonl"
    proc = run_script(
        "main_linear.py",
        tmp_path,
        "--config-name",
        "linear_div",
        f"pretrained_feature_extractor='{solo_checkpoint}'",
        "max_epochs=1",
        "data.num_workers=0",
        f"results={results}",
        "+enable_progress_bar=false",
        "+enable_model_summary=false",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Linear probe, solo-learn protocol: top-1" in proc.stdout
    (record,) = [json.loads(x) for x in results.read_text().splitlines()]
    assert (record["method"], record["dataset"], record["n_labelled"], record["n_test"]) == (
        "simclr",
        "imagenet100",
        60,
        30,
    )
    assert record["data_format"] == "image_folder" and record["global_batch"] == 256


def test_the_runs_machine_settings_are_not_read(solo_checkpoint):
    run = read_run_args(solo_checkpoint)
    assert not set(MACHINE_KEYS) & set(run)
    assert run["dali"] == {"encode_indexes_into_labels": False}  # dali.device: gpu is dropped
    assert run["method"] == "simclr" and run["backbone"]["name"] == "resnet18"


def test_sync_batchnorm_over_cpu_processes_falls_back_with_a_warning(linear_cfg, caplog):
    config = resolve_linear(
        linear_cfg(
            [
                "accelerator=cpu",
                "devices=2",
                "strategy=ddp",
                "+sync_batchnorm=true",
                "optimizer.lr=0.1",
                "optimizer.weight_decay=0",
            ]
        )
    )
    with caplog.at_level(logging.WARNING, logger="solo_diversity"):
        passed = trainer_kwargs(config.trainer, config.settings, config.hardware, [], [])
    assert passed["sync_batchnorm"] is False and passed["devices"] == 2
    assert [r.getMessage() for r in caplog.records] == [
        "sync_batchnorm=True is GPU-only; using plain BatchNorm on the CPU"
    ]


def test_keys_a_yaml_lacks_need_no_plus():
    argv = [
        "--config-name",
        "barlow.yaml",
        "results=r.jsonl",
        "+seed=3",
        "++probe.mode=features",
        "data.label_fraction=0.1",
        "+backbone.kwargs.width=8",
        "data.dataset=cifar100",
        "pretrained_feature_extractor='a=b.ckpt'",
    ]
    assert added_key_overrides(argv, LINEAR_COMMAND_LINE_KEYS) == [
        "--config-name",
        "barlow.yaml",
        "++results=r.jsonl",
        "++seed=3",
        "++probe.mode=features",
        "++data.label_fraction=0.1",
        "++backbone.kwargs.width=8",
        "data.dataset=cifar100",
        "pretrained_feature_extractor='a=b.ckpt'",
    ]
    knn = added_key_overrides(
        ["+dali.device=cpu", "dali.device=gpu", "k=[5]"], KNN_COMMAND_LINE_KEYS
    )
    assert knn == ["++dali.device=cpu", "++dali.device=gpu", "k=[5]"]
