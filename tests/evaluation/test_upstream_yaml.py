# SPDX-License-Identifier: MIT
"""A solo-learn linear YAML (its key set, written here) runs through main_linear.py as a user."""

from __future__ import annotations

import json
import sys

import torch

from tests import zygote
from tests.conftest import REPO
from tests.evaluation.conftest import solo_state, write_checkpoint
from tests.evaluation.probe_inputs import image_folder, torchvision_resnet18

# scripts/linear/imagenet-100/barlow.yaml of solo-learn, with only the data paths changed.
UPSTREAM_LINEAR_YAML = """\
defaults:
  - _self_
  - wandb: private.yaml
  - override hydra/hydra_logging: disabled
  - override hydra/job_logging: disabled

# disable hydra outputs
hydra:
  output_subdir: null
  run:
    dir: .

name: "barlow_twins-imagenet100-linear"
pretrained_feature_extractor: None
backbone:
  name: "resnet18"
pretrain_method: "barlow_twins"
data:
  dataset: imagenet100
  train_path: "{train}"
  val_path: "{val}"
  format: "image_folder"
  num_workers: 4
optimizer:
  name: "sgd"
  batch_size: 256
  lr: 0.1
  weight_decay: 0
scheduler:
  name: "step"
  lr_decay_steps: [60, 80]
checkpoint:
  enabled: True
  dir: "trained_models"
  frequency: 1
auto_resume:
  enabled: True

# overwrite PL stuff
max_epochs: 100
devices: [0]
sync_batchnorm: True
accelerator: "gpu"
strategy: "ddp"
precision: 16
"""
# The group file beside it (solo-learn ships one with enabled: True and its own entity).
PRIVATE_WANDB = 'enabled: False\nentity: None\nproject: "solo-learn"\n'


def test_a_solo_learn_linear_yaml_runs_unchanged(tmp_path, digits_indexes):
    # A solo-learn Barlow Twins ResNet-18 checkpoint (CIFAR stem) of 8-px digits.
    args = {
        "method": "barlow_twins",
        "backbone": {"name": "resnet18"},
        "data": {"dataset": "digits", "crop_size": 8},
        "dali": {"device": "gpu"},
    }
    checkpoint = write_checkpoint(
        tmp_path / "pretrain", solo_state(torchvision_resnet18(True)), args
    )
    train = image_folder(digits_indexes["train"], tmp_path / "imagenet-100" / "train", 12)
    val = image_folder(digits_indexes["test"], tmp_path / "imagenet-100" / "val", 6)
    config_dir = tmp_path / "linear"
    (config_dir / "wandb").mkdir(parents=True)
    (config_dir / "barlow.yaml").write_text(UPSTREAM_LINEAR_YAML.format(train=train, val=val))
    (config_dir / "wandb" / "private.yaml").write_text(PRIVATE_WANDB)
    # accelerator=cpu only (plus 3 epochs instead of 100, to keep the test short): the YAML's
    # sync_batchnorm: True and strategy: ddp stay, and results= needs no "+" although the YAML
    # has no such key.
    proc = zygote.run(
        [
            sys.executable,
            str(REPO / "main_linear.py"),
            "--config-path",
            str(config_dir),
            "--config-name",
            "barlow.yaml",
            f"pretrained_feature_extractor='{checkpoint}'",
            "accelerator=cpu",
            "max_epochs=3",
            "results=probes/linear.jsonl",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "precision=16 is GPU-only" in proc.stdout
    assert "Linear probe, solo-learn protocol: top-1" in proc.stdout
    (line,) = (tmp_path / "probes" / "linear.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["dataset"] == "imagenet100" and record["n_labelled"] == 120
    assert record["n_test"] == 60 and 0 <= record["acc1"] <= record["acc5"] <= 100
    assert record["optimizer"] == "sgd" and record["lr_scaled"] == 0.1  # 256 * 1 device / 256
    assert record["lr_decay_steps"] == [60, 80] and record["max_epochs"] == 3
    # checkpoint.enabled: the probe is saved as solo-learn saves it, under trained_models/linear
    (ckpt,) = (tmp_path / "trained_models" / "linear").glob("*/*.ckpt")
    assert ckpt.name.startswith("barlow_twins-imagenet100-linear-") and "-ep=" in ckpt.name
    state = torch.load(ckpt, weights_only=False)["state_dict"]
    assert {k.split(".")[0] for k in state} == {"backbone", "classifier"}
