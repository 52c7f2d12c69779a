# SPDX-License-Identifier: MIT
"""solo-learn pretraining keys: each works or fails with one line; ``budget.*`` as typed."""

from __future__ import annotations

import pytest

from solo_diversity.budget.plan import plan_budget
from solo_diversity.config.overrides import budget_overrides
from solo_diversity.config.pretrain import UNSUPPORTED_PRETRAIN_KEYS, resolve_pretrain_cfg
from solo_diversity.config.run_config import budget_notes
from solo_diversity.errors import UserError

WHERE = "is a solo-learn key that main_pretrain.py does not support"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+auto_umap.enabled=true", f"auto_umap.enabled=True {WHERE}: UMAP plots"),
        ("+scheduler.interval=epoch", f"scheduler.interval='epoch' {WHERE}: the budget schedules"),
        ("+max_steps=100", f"max_steps=100 {WHERE}: the budget sets max_steps = floor(C / G)"),
        ("+min_steps=10", f"min_steps=10 {WHERE}: the budget alone decides"),
        ("+min_epochs=2", f"min_epochs=2 {WHERE}: the budget alone decides"),
        ("+max_time='00:01:00:00'", f"max_time='00:01:00:00' {WHERE}: a time limit"),
        ("+limit_train_batches=0.5", f"limit_train_batches=0.5 {WHERE}: the budget decides"),
        ("+val_check_interval=0.25", f"val_check_interval=0.25 {WHERE}: validation runs 4 times"),
        ("+check_val_every_n_epoch=5", f"check_val_every_n_epoch=5 {WHERE}: validation runs"),
    ],
)
def test_each_unsupported_key_fails_with_its_line(compose_cfg, override, message):
    with pytest.raises(UserError) as err:
        resolve_pretrain_cfg(compose_cfg(overrides=[override]))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_every_table_key_has_a_test():
    tested = {
        "auto_umap.enabled",
        "scheduler.interval",
        "max_steps",
        "min_steps",
        "min_epochs",
        "max_time",
        "limit_train_batches",
        "val_check_interval",
        "check_val_every_n_epoch",
    }
    assert set(UNSUPPORTED_PRETRAIN_KEYS) == tested


@pytest.mark.parametrize(
    "override",
    [
        "+auto_umap.enabled=false",
        "+scheduler.interval=step",
        "+max_steps=-1",
        "+check_val_every_n_epoch=1",
        "+dali.encode_indexes_into_labels=true",
        "+debug_augmentations=true",
        "knn_eval.enabled=false",
    ],
)
def test_off_values_and_supported_upstream_keys_pass(compose_cfg, override):
    cfg = resolve_pretrain_cfg(compose_cfg(overrides=[override]))
    assert cfg.wandb.offline is False and cfg.loggers == ["csv"]


def test_wandb_flags_must_be_booleans(compose_cfg):
    with pytest.raises(UserError, match=r"^wandb.offline='yes' must be true or false$"):
        resolve_pretrain_cfg(compose_cfg(overrides=["wandb.offline=yes"]))


def test_bare_budget_overrides_become_force_adds():
    argv = [
        "--config-name",
        "simclr.yaml",
        "budget.C=256",
        "++budget.mode=images",
        "+budget.epochs=3",
        "data.fraction=0.1",
        "loggers=[csv,tensorboard]",
        "budget.C",
    ]
    assert budget_overrides(argv) == [
        "--config-name",
        "simclr.yaml",
        "++budget.C=256",
        "++budget.mode=images",
        "+budget.epochs=3",
        "data.fraction=0.1",
        "++loggers=[csv,tensorboard]",
        "budget.C",
    ]
    assert budget_overrides(budget_overrides(argv)) == budget_overrides(argv)


def test_plan_notes_say_the_budget_replaced_max_epochs(compose_cfg):
    cfg = resolve_pretrain_cfg(compose_cfg(overrides=["+max_epochs=1000", "budget.C=1000"]))
    plan = plan_budget(1000, 1438, 128, N_ref=1438)
    assert budget_notes(cfg, plan) == [
        "max_epochs 1000 in the config -> replaced by the budget: 7 steps (E = 0.70 epochs of "
        "N = 1,438)"
    ]
    cfg = resolve_pretrain_cfg(compose_cfg(overrides=["+max_epochs=2", "~budget.C"]))
    plan = plan_budget(2 * 1438, 1438, 128, N_ref=1438)
    assert budget_notes(cfg, plan) == [
        "budget.C not set: C = max_epochs 2 x N_ref 1,438 = 2,876 images, trained as 22 steps"
    ]
    assert budget_notes(resolve_pretrain_cfg(compose_cfg()), plan) == []
