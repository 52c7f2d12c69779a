# SPDX-License-Identifier: MIT
"""``optimizer.global_batch_size``: the device count never changes a recipe's G, LR or steps."""

from __future__ import annotations

import pytest

from solo_diversity.config.pretrain import attach_plan, resolve_pretrain_cfg
from solo_diversity.config.run_config import budget_notes
from solo_diversity.errors import UserError
from solo_diversity.methods.settings import method_settings

GLOBAL_256 = [
    "optimizer.batch_size=null",
    "++optimizer.global_batch_size=256",
    "budget.C=50e6",
    "scheduler.warmup_epochs=10",
]


def _planned(compose_cfg, overrides, world):
    cfg = resolve_pretrain_cfg(compose_cfg("simclr_div", overrides))
    return attach_plan(
        cfg, dataset_size=50_000, subset_size=5_000, num_classes=100, world_size=world
    )


@pytest.mark.parametrize("world", [1, 2, 4, 8])
def test_global_batch_lr_and_steps_do_not_depend_on_the_world_size(compose_cfg, world) -> None:
    cfg, plan = _planned(compose_cfg, GLOBAL_256, world)
    assert cfg.optimizer.batch_size == 256 // world
    assert plan.global_batch == 256 and plan.steps == 195_312
    settings = method_settings(cfg)
    assert settings.optimizer.lr == pytest.approx(float(cfg.optimizer.lr))  # x 256 / 256
    assert settings.scheduler.warmup_steps == 190  # 10 epochs of 5,000 // 256 = 19 steps


def test_accumulation_splits_the_global_batch_too(compose_cfg) -> None:
    cfg, plan = _planned(compose_cfg, [*GLOBAL_256, "++accumulate_grad_batches=2"], 2)
    assert cfg.optimizer.batch_size == 64 and plan.global_batch == 256


def test_a_global_batch_that_does_not_split_is_one_line(compose_cfg) -> None:
    with pytest.raises(UserError, match="global_batch_size=256 does not split over 3 process"):
        _planned(compose_cfg, GLOBAL_256, 3)


def test_an_explicit_per_device_batch_keeps_solo_learns_meaning(compose_cfg) -> None:
    overrides = ["optimizer.batch_size=64", "++optimizer.global_batch_size=256", "budget.C=50e6"]
    cfg, plan = _planned(compose_cfg, overrides, 2)
    assert cfg.optimizer.batch_size == 64 and plan.global_batch == 128
    assert budget_notes(cfg, plan) == [
        "optimizer.batch_size=64 per device (solo-learn's meaning): G = 128, not the recipe's "
        "global_batch_size 256"
    ]


def test_neither_batch_key_is_one_line(compose_cfg) -> None:
    with pytest.raises(UserError, match="set optimizer.batch_size .per device. or optimizer.glob"):
        unset = ["optimizer.batch_size=null", "++optimizer.global_batch_size=null"]
        _planned(compose_cfg, unset, 1)
