# SPDX-License-Identifier: MIT
"""``data.format=dali`` end to end on the CPU: byte and path indexes, the probe, bad devices."""

from __future__ import annotations

import json

import pytest
import torch
from hydra import compose, initialize_config_dir

from solo_diversity.data import decode_image
from solo_diversity.errors import UserError
from solo_diversity.evaluation.linear import run_linear
from solo_diversity.index import build_index, open_index
from solo_diversity.run.pretrain import run_pretrain
from tests.conftest import CONFIG_DIR

DALI = [
    "data.format=dali",
    "dali.device=cpu",
    "optimizer.batch_size=32",
    "budget.C=1000",
    "+backbone.kwargs.width=8",
]


def probe(checkpoint, results, *overrides):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        cfg = compose(
            config_name="linear_div",
            overrides=[
                f"pretrained_feature_extractor='{checkpoint}'",
                f"results={results}",
                "max_epochs=5",
                "data.num_workers=0",  # the feed in the probe's own process: no spawned workers
                *overrides,
            ],
        )
    return run_linear(cfg).record


def test_dali_pretraining_on_the_embedded_digits_keeps_the_ledger_exact(compose_cfg, tmp_path):
    result = run_pretrain(compose_cfg(overrides=[*DALI, f"++data.index_cache={tmp_path}"]))
    assert result.ledger["images_seen"] == result.plan.C_eff == 992
    assert result.ledger["images_per_step_rank0"] == {"32": 31} and result.ledger["match"]
    assert json.loads((result.checkpoint.parent / "args.json").read_text())["data"]["format"] == (
        "dali"
    )
    assert list(tmp_path.glob("digits-*.dali-screen"))  # verdicts cached for the next run
    # The probe follows the run's data.format (DALI): fresh DALI training views every epoch ...
    record = probe(
        result.checkpoint,
        tmp_path / "r.jsonl",
        "data.label_fraction=0.5",
        "optimizer.batch_size=64",
        "optimizer.lr=1.0",
    )  # 55 steps at lr 0.25
    assert record["data_format"] == "dali" and record["probe_mode"] == "protocol"
    assert record["accuracy"] > 30.0  # 10 classes: far above chance after 31 steps
    # ... and the features mode draws its RRC + flip views with DALI too.
    record = probe(
        result.checkpoint,
        tmp_path / "r.jsonl",
        "probe.mode=features",
        "data.train_views=2",
        "data.label_fraction=0.5",
    )
    assert record["data_format"] == "dali" and record["train_views"] == 2
    assert record["accuracy"] > 30.0


def test_dali_pretraining_on_a_path_index_of_jpegs(compose_cfg, digits_indexes, tmp_path):
    # A folder of real JPEG files (the digits, upscaled), read through a paths index.
    digits = open_index(digits_indexes["train"])
    root = tmp_path / "jpegs"
    for position in range(200):
        label = int(digits.labels([position])[0])
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
        image = decode_image(digits.read_bytes(position)).resize((32, 32))
        image.save(root / f"c{label}" / f"{position}.jpg", quality=90)
    index = build_index("folder", tmp_path / "jpegs.h5", dataset="digits", root=root)
    assert open_index(index).kind == "paths"
    result = run_pretrain(
        compose_cfg(
            overrides=[
                *DALI,
                f"data.train_path={index}",
                f"++data.index_cache={tmp_path}",
                "budget.C=320",
                "data.val_path=null",
            ]
        )
    )
    assert result.plan.N == 200 and result.ledger["images_seen"] == 320 and result.ledger["match"]


def test_dali_device_gpu_without_a_gpu_is_a_clear_error(compose_cfg):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: dali.device=gpu is valid here")
    with pytest.raises(UserError, match="dali.device=gpu but no GPU is visible"):
        run_pretrain(compose_cfg(overrides=[*DALI, "dali.device=gpu"]))


def test_auto_dali_device_follows_the_accelerator(compose_cfg):
    from solo_diversity.config.loader import dali_device
    from solo_diversity.config.pretrain import resolve_pretrain_cfg
    from solo_diversity.config.run_config import PRETRAIN_GPU_HINT, resolve_hardware

    cfg = resolve_pretrain_cfg(compose_cfg(overrides=["data.format=dali"]))
    assert cfg.dali.device == "auto" and cfg.accelerator == "cpu"  # the digits group trains on CPU
    assert dali_device(cfg, resolve_hardware(cfg, PRETRAIN_GPU_HINT)) == "cpu"
