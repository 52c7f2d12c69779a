# SPDX-License-Identifier: MIT
"""Every upstream key the probe leaves out, and every bad value, is one line naming it."""

from __future__ import annotations

import pytest

from solo_diversity.config.probe import (
    LINEAR_UNSUPPORTED,
    probe_settings,
    resolve_linear_cfg,
)
from solo_diversity.errors import UserError
from solo_diversity.evaluation.linear import run_linear

ON_VALUES = {
    "mixup": 0.8,
    "cutmix": 1.0,
    "auto_augment": True,
    "finetune": True,
    "optimizer.layer_decay": 0.65,
    "data.fraction": 0.1,
}


def test_the_table_covers_every_case_here():
    assert set(ON_VALUES) == set(LINEAR_UNSUPPORTED)


@pytest.mark.parametrize("key", sorted(LINEAR_UNSUPPORTED))
def test_an_unsupported_upstream_key_is_refused_with_its_line(linear_cfg, key):
    with pytest.raises(UserError) as err:
        resolve_linear_cfg(linear_cfg([f"++{key}={ON_VALUES[key]}"]))
    why = LINEAR_UNSUPPORTED[key][1]
    assert str(err.value) == (
        f"{key}={ON_VALUES[key]!r} is a solo-learn key that main_linear.py does not support: {why}"
    )


@pytest.mark.parametrize("key", sorted(LINEAR_UNSUPPORTED))
def test_an_unsupported_key_at_its_off_value_is_accepted(linear_cfg, key):
    off = LINEAR_UNSUPPORTED[key][0][0]
    resolve_linear_cfg(linear_cfg([f"++{key}={off}"]))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("scheduler.name=reduce", "scheduler.name='reduce' is not supported (ReduceLROnPlateau"),
        ("scheduler.name=exponential", "scheduler.name='exponential' is not supported (solo-learn"),
        (
            "scheduler.name=cosine",
            "scheduler.name='cosine' is not supported (unknown); choose step,",
        ),
        ("scheduler.lr_decay_steps=null", "scheduler.name=step needs scheduler.lr_decay_steps"),
        ("+scheduler.interval=batch", "scheduler.interval='batch' must be step or epoch"),
        ("probe.mode=cached", "probe.mode='cached' is unknown; choose protocol or features"),
        ("data.label_fraction=0", "data.label_fraction=0.0 must be in (0, 1]"),
        ("data.train_views=2", "data.train_views=2 applies to probe.mode=features"),
        ("max_epochs=0", "max_epochs=0 must be >= 1"),
        ("+label_smoothing=1.0", "label_smoothing=1.0 must be in [0, 1)"),
    ],
)
def test_bad_values_are_one_line(linear_cfg, override, message):
    with pytest.raises(
        UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        probe_settings(resolve_linear_cfg(linear_cfg([override])))


def test_an_unknown_optimizer_is_one_line(linear_cfg):
    with pytest.raises(UserError, match="optimizer.name='rmsprop' is unknown; choose sgd, lars"):
        resolve_linear_cfg(linear_cfg(["optimizer.name=rmsprop"]))


@pytest.mark.parametrize("value", ["None", "null"])
def test_solo_learns_none_checkpoint_placeholder_asks_for_one(linear_cfg, value):
    with pytest.raises(UserError, match="set pretrained_feature_extractor=<path to a .ckpt>"):
        resolve_linear_cfg(linear_cfg([f"pretrained_feature_extractor={value}"]))


def test_a_gpu_accelerator_without_a_gpu_is_one_line(linear_cfg):
    import torch

    if torch.cuda.is_available():
        return  # a GPU is visible: accelerator=gpu is valid here
    with pytest.raises(UserError, match="accelerator=gpu but no GPU is visible"):
        run_linear(linear_cfg(["accelerator=gpu"]))


def test_the_dali_protocol_on_several_devices_is_one_line(linear_cfg):
    with pytest.raises(UserError, match="data.format=dali probes on one device"):
        run_linear(linear_cfg(["data.format=dali", "devices=2", "accelerator=cpu"]))
