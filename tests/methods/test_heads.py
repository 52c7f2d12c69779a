# SPDX-License-Identifier: MIT
"""Heads have solo-learn's state_dict keys (bias, BatchNorm, layer order, attribute names), and
``backbone.kwargs`` such as ``zero_init_residual`` reach torchvision's ResNets."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.resnet import BasicBlock, Bottleneck

from solo_diversity.errors import UserError
from solo_diversity.models.backbones import build_backbone

LIN = ("weight", "bias")
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
WEIGHT_NORM = ("weight_g", "weight_v")


def keys(prefix: str, layers: dict[int | str, tuple[str, ...]]) -> set[str]:
    return {f"{prefix}.{i}.{name}" for i, names in layers.items() for name in names}


# Typed from solo-learn's methods/*.py: SimCLR Linear-ReLU-Linear; BYOL Linear-BN-ReLU-Linear
# (projector and predictor); VICReg/Barlow Twins (Linear-BN-ReLU) x2 + Linear; DINOHead
# mlp (Linear-GELU) x2 + Linear then weight-normed last_layer; SwAV Linear-BN-ReLU-Linear and
# weight-normed prototypes.
TWO_LAYER_BN = {0: LIN, 1: BN, 3: LIN}
THREE_LAYER_BN = {0: LIN, 1: BN, 3: LIN, 4: BN, 6: LIN}
DINO_HEAD = keys("mlp", {0: LIN, 2: LIN, 4: LIN}) | {f"last_layer.{k}" for k in WEIGHT_NORM}
HEAD_KEYS: dict[str, set[str]] = {
    "simclr": keys("projector", {0: LIN, 2: LIN}),
    "byol": keys("projector", TWO_LAYER_BN)
    | keys("momentum_projector", TWO_LAYER_BN)
    | keys("predictor", TWO_LAYER_BN),
    "vicreg": keys("projector", THREE_LAYER_BN),
    "barlow_twins": keys("projector", THREE_LAYER_BN),
    "dino": {f"head.{k}" for k in DINO_HEAD}
    | {f"momentum_head.{k}" for k in DINO_HEAD}
    | {"dino_loss_func.center"},
    "swav": keys("projector", TWO_LAYER_BN) | {f"prototypes.{k}" for k in WEIGHT_NORM} | {"queue"},
}
NOT_HEADS = ("backbone.", "momentum_backbone.", "classifier.", "momentum_classifier.")


@pytest.mark.parametrize("name", sorted(HEAD_KEYS))
def test_head_state_dict_keys_match_solo_learn(build_method, name: str) -> None:
    model = build_method(name)
    heads = {k for k in model.state_dict() if not k.startswith(NOT_HEADS)}
    assert heads == HEAD_KEYS[name]


def test_dino_and_swav_prototypes_are_bias_free_and_unit_norm(build_method) -> None:
    for name, layer in (("dino", "head.last_layer"), ("swav", "prototypes")):
        model = build_method(name)
        state = model.state_dict()
        assert f"{layer}.bias" not in state
        assert state[f"{layer}.weight_g"].shape == (24, 1)  # nn.utils.weight_norm's (out, 1)
        assert torch.all(state[f"{layer}.weight_g"] == 1)


def last_bns(net: torch.nn.Module) -> list[torch.Tensor]:
    """The last BatchNorm gamma of every residual block."""
    out = []
    for block in net.modules():
        if isinstance(block, Bottleneck):
            out.append(block.bn3.weight)
        elif isinstance(block, BasicBlock):
            out.append(block.bn2.weight)
    return out


@pytest.mark.parametrize(("name", "blocks"), [("resnet18", 8), ("resnet50", 16)])
def test_zero_init_residual_reaches_torchvision(name: str, blocks: int) -> None:
    zeroed = last_bns(build_backbone(name, cifar=True, zero_init_residual=True))
    assert len(zeroed) == blocks and all(torch.count_nonzero(g) == 0 for g in zeroed)
    default = last_bns(build_backbone(name, cifar=True))
    assert len(default) == blocks and all(torch.all(g == 1) for g in default)
    off = last_bns(build_backbone(name, zero_init_residual=False))
    assert all(torch.all(g == 1) for g in off)


def test_zero_init_residual_from_the_config(build_method) -> None:
    model = build_method(
        "simclr", ["backbone.name=resnet18", "+backbone.kwargs.zero_init_residual=True"]
    )
    gammas = last_bns(model.backbone)
    assert len(gammas) == 8 and all(torch.count_nonzero(g) == 0 for g in gammas)
    assert model.cfg.backbone.kwargs.zero_init_residual is True


def test_unknown_resnet_kwarg_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"backbone.kwargs \['no_such_option'\] not accepted"):
        build_backbone("resnet18", no_such_option=1)


def test_dino_center_is_stored_with_solo_learns_shape(build_builtin_method) -> None:
    build_method = build_builtin_method  # the built-in loss keeps lightly's layout in memory
    model = build_method("dino")
    state = model.state_dict()
    assert state["dino_loss_func.center"].shape == (1, 24)  # solo-learn's (1, num_prototypes)
    state["dino_loss_func.center"] = torch.arange(24.0).reshape(1, 24)
    fresh = build_method("dino")
    fresh.load_state_dict(state, strict=True)
    assert fresh.dino_loss_func.center.shape == (1, 1, 24)  # lightly's layout in memory
    assert torch.equal(fresh.dino_loss_func.center.flatten(), torch.arange(24.0))
    assert torch.equal(fresh.state_dict()["dino_loss_func.center"], torch.arange(24.0)[None])
