# SPDX-License-Identifier: MIT
"""The probe's rate is solo-learn's per-method linear rate at the pretraining run's scale."""

from __future__ import annotations

import json

import pytest
import torch

from solo_diversity.errors import UserError
from solo_diversity.evaluation.linear import run_linear
from solo_diversity.evaluation.recipes import probe_recipe, scale_of_dataset
from tests.evaluation.conftest import write_checkpoint

# Typed from solo-learn's scripts/linear/imagenet-100/<file>.yaml (optimizer.lr, weight_decay).
IMAGENET100 = {
    "simclr": (1.0, 0.0),
    "byol": (0.3, 0.0),
    "dino": (0.3, 0.0),
    "mocov3": (0.3, 0.0),
    "vicreg": (0.3, 0.0),
    "swav": (0.15, 0.0),
    "barlow_twins": (0.1, 0.0),
}


@pytest.mark.parametrize("method", sorted(IMAGENET100))
@pytest.mark.parametrize("scale", ["cifar", "imagenet100"])
def test_imagenet100_files_give_the_rates(method, scale) -> None:
    recipe = probe_recipe(method, scale)
    assert (recipe.lr, recipe.weight_decay) == IMAGENET100[method]
    assert recipe.source.startswith("solo-learn scripts/linear/imagenet-100/")


def test_imagenet_files_where_upstream_has_them() -> None:
    # solo-learn scripts/linear/imagenet/barlow.yaml and byol.yaml
    barlow = probe_recipe("barlow_twins", "imagenet")
    assert (barlow.lr, barlow.weight_decay) == (0.3, 1e-5)
    assert probe_recipe("byol", "imagenet").lr == 0.1
    assert probe_recipe("simclr", "imagenet").source.endswith("imagenet-100/simclr.yaml")
    assert probe_recipe("mocov3", "imagenet100", "vit").source.endswith("mocov3_vit.yaml")


def test_scales_of_the_data_groups() -> None:
    datasets = ("cifar100", "tinyimagenet", "imagenet100", "imagenet", "yfcc100m")
    scales = ["cifar", "cifar", "imagenet100", "imagenet", "imagenet"]
    assert [scale_of_dataset(d) for d in datasets] == scales


def test_unknown_method_or_scale_is_one_line() -> None:
    with pytest.raises(UserError, match="no probe recipe for method 'nnclr'; known: barlow_twins"):
        probe_recipe("nnclr", "cifar")
    with pytest.raises(UserError, match="unknown recipe scale 'cifar10'; choose cifar, imag"):
        probe_recipe("simclr", "cifar10")


def test_an_unset_lr_is_the_checkpoints_method_rate(linear_cfg, tiny_checkpoint, tmp_path) -> None:
    run_linear(linear_cfg(["probe.mode=features", "max_epochs=1"]))
    lines = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert lines[-1]["lr"] == 1.0  # the tiny checkpoint is SimCLR: imagenet-100/simclr.yaml
    # the same weights in a run that names no method, called SwAV, probe at SwAV's rate; a set
    # optimizer.lr wins
    args = json.loads((tiny_checkpoint.parent / "args.json").read_text())
    del args["method"]
    state = torch.load(tiny_checkpoint, weights_only=False)["state_dict"]
    unnamed = write_checkpoint(tmp_path / "unnamed", state, args)
    run_linear(
        linear_cfg(
            ["probe.mode=features", "max_epochs=1", "pretrain_method=swav"], checkpoint=unnamed
        )
    )
    run_linear(linear_cfg(["probe.mode=features", "max_epochs=1", "optimizer.lr=0.05"]))
    lines = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [line["lr"] for line in lines[-2:]] == [0.15, 0.05]
