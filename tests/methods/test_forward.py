# SPDX-License-Identifier: MIT
"""Forward keys and shapes of every registered method on each backbone family."""

from __future__ import annotations

import pytest
import torch

from solo_diversity.methods import BUILTIN_METHODS
from tests.methods.method_helpers import NAMES, two_crop_batch

# (key, size) of the student forward beyond logits/feats; sizes refer to tests/methods/conftest.py
STUDENT_KEYS = {
    "simclr": {"z": 16},
    "mocov3": {"z": 16, "q": 16},
    "vicreg": {"z": 16},
    "dino": {"z": 24},
    "byol": {"z": 16, "p": 16},
    "barlow_twins": {"z": 16},
    "swav": {"z": 16, "p": 24},
}
TEACHER_KEYS = {"mocov3": {"k": 16}, "dino": {"z": 24}, "byol": {"z": 16}}
BACKBONES = {  # name -> (crop size, feature size)
    "small_cnn": (8, 128),
    "resnet18": (8, 512),
    "vit_small": (16, 384),
}


def test_registry_has_the_seven_solo_learn_keys() -> None:
    assert sorted(BUILTIN_METHODS) == sorted(
        ["simclr", "mocov3", "vicreg", "dino", "byol", "barlow_twins", "swav"]
    )
    assert {k: v.__name__ for k, v in BUILTIN_METHODS.items()} == {
        "simclr": "SimCLR",
        "mocov3": "MoCoV3",
        "vicreg": "VICReg",
        "dino": "DINO",
        "byol": "BYOL",
        "barlow_twins": "BarlowTwins",
        "swav": "SwAV",
    }


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("name", NAMES)
def test_forward_keys_and_shapes(build_method, name: str, backbone: str) -> None:
    crop, feats = BACKBONES[backbone]
    model = build_method(name, [f"backbone.name={backbone}", f"data.crop_size={crop}"])
    model.eval()
    x = torch.randn(3, 3, crop, crop)
    out = model(x)
    assert out["feats"].shape == (3, feats)
    assert out["logits"].shape == (3, 10)
    assert set(out) == {"feats", "logits", *STUDENT_KEYS[name]}
    for key, size in STUDENT_KEYS[name].items():
        assert out[key].shape == (3, size)
    if hasattr(model, "momentum_forward"):
        teacher = model.momentum_forward(x)
        assert set(teacher) == {"feats", *TEACHER_KEYS[name]}
        for key, size in TEACHER_KEYS[name].items():
            assert teacher[key].shape == (3, size)
    else:
        assert name not in TEACHER_KEYS


@pytest.mark.parametrize("name", NAMES)
def test_training_step_outputs_momentum_prefixed_lists(build_builtin_method, name: str) -> None:
    model = build_builtin_method(name)
    out = super(type(model), model).training_step(two_crop_batch(), 0)  # the parent's dict
    for key in STUDENT_KEYS[name]:
        assert len(out[key]) == 2
    if name in TEACHER_KEYS:
        expected = {f"momentum_{k}" for k in TEACHER_KEYS[name]} | {"momentum_feats"}
        assert expected <= set(out)
        assert len(out["momentum_feats"]) == 2


@pytest.mark.parametrize("name", NAMES)
def test_training_step_returns_a_finite_scalar(build_method, name: str) -> None:
    loss = build_method(name).training_step(two_crop_batch(), 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
