# SPDX-License-Identifier: MIT
"""The solo-learn backend switches its epoch-counted rules at the built-in classes' steps.

solo-learn's DINO and SwAV test ``current_epoch`` (``< freeze_last_layer``, ``>=
epoch_queue_starts``, ``< freeze_prototypes_epochs``); the bridge reports ``current_epoch`` from
the budget plan. These tests run the bridge's own code (its mixin) on both readings; solo-learn's
classes themselves are optional and not installed here.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from solo_diversity.budget.plan import plan_budget
from solo_diversity.methods import DINO, SwAV
from solo_diversity.methods.settings import budget_plan_of
from solo_diversity.methods.upstream import BudgetPlugin
from tests.methods.method_helpers import method_cfg


class _Bridged(BudgetPlugin):
    """The mixin alone, at a given optimizer step (what a Trainer would report)."""

    def __init__(self, plan, step):  # the mixin's __init__ needs solo-learn's class behind it
        self.plan = plan
        self._trainer = SimpleNamespace(global_step=step)


@pytest.mark.parametrize("reading", ["subset", "reference"])
@pytest.mark.parametrize("epochs", [1, 2, 50])
def test_current_epoch_rules_switch_at_the_converted_step(reading, epochs) -> None:
    plan = plan_budget(50e6, 5_000, 256, N_ref=50_000, epoch_keys=reading)
    switch = plan.epochs_to_steps(epochs)
    for step in (switch - 2, switch - 1, switch, switch + 1):
        bridged = _Bridged(plan, step)
        assert (bridged.current_epoch < epochs) == (step < switch)
        assert (bridged.current_epoch >= epochs) == (step >= switch)


@pytest.mark.parametrize("reading", ["subset", "reference"])
@pytest.mark.parametrize(
    ("cls", "overrides"),
    [
        (
            DINO,
            [
                "method_kwargs.warmup_teacher_temperature_epochs=3",
                "method_kwargs.freeze_last_layer=2",
            ],
        ),  # noqa: E501
        (SwAV, ["method_kwargs.epoch_queue_starts=3", "method_kwargs.freeze_prototypes_epochs=2"]),
    ],
)
def test_both_backends_report_the_same_converted_keys(compose_cfg, cls, overrides, reading) -> None:
    key = cls.__name__.lower()
    cfg = method_cfg(
        compose_cfg,
        key,
        [*overrides, "budget.C=1e4", f"++budget.epoch_keys={reading}"],
        dataset_size=1000,
        subset_size=100,
    )
    plan = budget_plan_of(cfg)
    bridged = type(cls.__name__, (BudgetPlugin,), {"registry_key": key})
    builtin = cls.converted_schedules(cfg, plan)
    upstream = bridged.converted_schedules(cfg, plan)
    assert upstream["warmup_steps"] == builtin["warmup_steps"]
    assert sorted(v for k, v in upstream.items() if k != "warmup_steps") == sorted(
        v for k, v in builtin.items() if k != "warmup_steps"
    )
    spe = 100 // 8  # subset epochs: 12 steps of 8 images (drop_last)
    expected = [2 * spe, 3 * spe] if reading == "subset" else [250, 375]  # 2, 3 of 10 ref. epochs
    assert sorted(v for k, v in builtin.items() if k != "warmup_steps") == expected


class _SoloBase:
    """Where solo-learn's method class sits behind the mixin (solo-learn is not installed here):
    it records the config it is given."""

    def __init__(self, cfg):
        self.seen = (cfg.max_epochs, cfg.knn_eval.enabled)


def test_the_bridge_leaves_the_runs_config_as_written(compose_cfg) -> None:
    cfg = method_cfg(compose_cfg, "simclr", ["++max_epochs=1000", "budget.C=1e4"])
    bridged = type("SimCLR", (BudgetPlugin, _SoloBase), {"registry_key": "simclr"})(cfg)
    plan = budget_plan_of(cfg)
    assert bridged.seen == (plan.schedule_epochs, False)  # solo-learn's tables cover the run
    assert cfg.max_epochs == 1000  # args.json keeps the YAML's value
    assert bridged.classifier_lr == pytest.approx(0.1 * plan.global_batch / 256)
