# SPDX-License-Identifier: MIT
"""Unknown top-level keys are one error line; budget keys that the mode ignores one warning each."""

from __future__ import annotations

import logging

import pytest

from solo_diversity.budget.plan import unused_budget_keys
from solo_diversity.config.pretrain import resolve_pretrain_cfg
from solo_diversity.errors import UserError

TAIL = (
    "nothing reads it. The keys are solo-learn's, the Trainer's and this project's, see "
    "yaml_configs/simclr_div.yaml"
)
EPOCHS_WHY = (
    "budget.mode=epochs sets C = N x budget.epochs and counts the schedule in its own epochs "
    "(N_ref = N)"
)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+foo=1", f"unknown top-level key 'foo'; {TAIL}"),
        ("+foo.bar=1", f"unknown top-level key 'foo'; {TAIL}"),
        (
            "+gradient_clip_vla=1",
            f"unknown top-level key 'gradient_clip_vla' (did you mean "
            f"'gradient_clip_val'?); {TAIL}",
        ),
        (
            "+optimiser.lr=1",
            f"unknown top-level key 'optimiser' (did you mean 'optimizer'?); {TAIL}",
        ),
    ],
)
def test_an_unknown_top_level_key_is_one_line(compose_cfg, override, message):
    with pytest.raises(UserError) as err:
        resolve_pretrain_cfg(compose_cfg(overrides=[override]))
    assert str(err.value) == message


@pytest.mark.parametrize(
    "override",
    [
        "+gradient_clip_val=0.5",  # a Trainer argument passes through
        "+log_every_n_steps=5",
        "+enable_progress_bar=false",
        "+performance.disable_channel_last=true",  # solo-learn's schema
        "+auto_umap.enabled=false",
        "resume_from_checkpoint=null",  # in the shipped configs
        "+num_nodes=1",
        "+accumulate_grad_batches=1",
    ],
)
def test_known_top_level_keys_pass(compose_cfg, override):
    resolve_pretrain_cfg(compose_cfg(overrides=[override]))


def test_unused_budget_keys_in_images_mode():
    assert unused_budget_keys({"mode": "images", "C": 5, "epochs": 3}) == [
        "budget.epochs=3 is ignored: budget.mode=images fixes C; E = C / N follows from it"
    ]


def test_unused_budget_keys_in_epochs_mode():
    assert unused_budget_keys(
        {"mode": "epochs", "C": "50e6", "epochs": 2, "reference_size": 5000}
    ) == [
        f"budget.C='50e6' is ignored: {EPOCHS_WHY}",
        f"budget.reference_size=5000 is ignored: {EPOCHS_WHY}",
    ]


def test_used_or_unset_budget_keys_say_nothing():
    assert unused_budget_keys({"mode": "images", "C": 5, "reference_size": 9}) == []
    assert unused_budget_keys({"mode": "epochs", "epochs": 2, "C": None}) == []


def test_an_unused_budget_key_warns_once_per_key(compose_cfg, caplog):
    cfg = compose_cfg(
        overrides=["++budget.mode=epochs", "++budget.epochs=2", "++budget.reference_size=5000"]
    )
    with caplog.at_level(logging.WARNING, logger="solo_diversity"):
        resolve_pretrain_cfg(cfg)
    ignored = [r.getMessage() for r in caplog.records if "is ignored" in r.getMessage()]
    assert ignored == [  # the digits data group sets budget.C: 3e4
        f"budget.C=30000.0 is ignored: {EPOCHS_WHY}",
        f"budget.reference_size=5000 is ignored: {EPOCHS_WHY}",
    ]
