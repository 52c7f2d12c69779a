# SPDX-License-Identifier: MIT
"""MoCo v3's ViT (solo-learn's vit_mocov3.py): fixed sin-cos position embedding, its init, its
sizes, chosen for method=mocov3 only; MoCo v3's bias-free heads with upstream's keys."""

from __future__ import annotations

import math

import pytest
import torch

from solo_diversity.models.backbones import build_backbone
from solo_diversity.models.vit_mocov3 import VisionTransformerMoCo
from tests.methods.method_helpers import two_crop_batch

# Depth 2 keeps the tests fast; every other size is the real ViT-S/16.
SMALL = {"img_size": 64, "patch_size": 16, "depth": 2}


def expected_pos_embed(rows: int, cols: int, dim: int) -> torch.Tensor:
    """Independent, element by element: token 1 + r*cols + c gets sin/cos of r, then of c."""
    quarter = dim // 4
    table = torch.zeros(1 + rows * cols, dim, dtype=torch.float64)
    for r in range(rows):
        for c in range(cols):
            token = 1 + r * cols + c
            for k in range(quarter):
                w = 1.0 / (10000.0 ** (k / quarter))
                table[token, k] = math.sin(r * w)
                table[token, quarter + k] = math.cos(r * w)
                table[token, 2 * quarter + k] = math.sin(c * w)
                table[token, 3 * quarter + k] = math.cos(c * w)
    return table[None]


@pytest.fixture(scope="module")
def vit() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone("vit_small", method="mocov3", **SMALL)


def test_mocov3_gets_the_mocov3_vit_and_other_methods_timms(vit) -> None:
    assert isinstance(vit, VisionTransformerMoCo)
    assert vit.num_features == 384 and vit.blocks[0].attn.num_heads == 12  # upstream: 12 heads
    for method in ("simclr", "dino", "byol", None):
        other = build_backbone("vit_small", method=method, **SMALL)
        assert not isinstance(other, VisionTransformerMoCo)
        assert other.blocks[0].attn.num_heads == 6 and other.pos_embed.requires_grad
    base = build_backbone("vit_base", method="mocov3", **SMALL)
    assert isinstance(base, VisionTransformerMoCo)
    assert base.num_features == 768 and base.blocks[0].attn.num_heads == 12


def test_position_embedding_is_fixed_2d_sincos(vit) -> None:
    assert not vit.pos_embed.requires_grad
    assert "pos_embed" in dict(vit.named_parameters())  # a Parameter, as upstream: same key
    assert vit.pos_embed.shape == (1, 17, 384)
    torch.testing.assert_close(
        vit.pos_embed.double(), expected_pos_embed(4, 4, 384), rtol=0, atol=1e-6
    )


def test_mocov3_initialisation(vit) -> None:
    qkv = vit.blocks[0].attn.qkv.weight  # (3*384, 384): Q, K and V as three 384x384 layers
    bound = math.sqrt(6.0 / (384 + 384))
    assert qkv.abs().max() <= bound and qkv.abs().max() > 0.99 * bound
    fc1 = vit.blocks[1].mlp.fc1.weight  # (1536, 384), Xavier-uniform
    bound = math.sqrt(6.0 / (384 + 1536))
    assert fc1.abs().max() <= bound and fc1.abs().max() > 0.99 * bound
    patch = vit.patch_embed.proj.weight  # (384, 3, 16, 16)
    bound = math.sqrt(6.0 / (3 * 16 * 16 + 384))
    assert patch.abs().max() <= bound and patch.abs().max() > 0.99 * bound
    assert vit.cls_token.abs().max() < 1e-5 and vit.cls_token.abs().max() > 0
    biases = [m.bias for m in vit.modules() if isinstance(m, torch.nn.Linear)]
    assert biases and all(torch.count_nonzero(b) == 0 for b in biases)
    assert torch.count_nonzero(vit.patch_embed.proj.bias) == 0


def test_vit_returns_class_token_features(vit) -> None:
    vit.eval()
    assert vit(torch.randn(2, 3, 64, 64)).shape == (2, 384)


MOCO_VIT = [
    "backbone.name=vit_small",
    "data.crop_size=32",
    "+backbone.kwargs.depth=1",
    "+backbone.kwargs.patch_size=16",
]
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
BN_NO_AFFINE = ("running_mean", "running_var", "num_batches_tracked")


def keys(prefix: str, layers: dict[int, tuple[str, ...]]) -> set[str]:
    return {f"{prefix}.{i}.{name}" for i, names in layers.items() for name in names}


def head_keys(model: torch.nn.Module, prefix: str) -> set[str]:
    return {k for k in model.state_dict() if k.split(".")[0] == prefix}


def test_mocov3_vit_heads_have_upstreams_keys_and_no_bias(build_builtin_method) -> None:
    model = build_builtin_method("mocov3", MOCO_VIT)
    # _build_mlp(3, ...) and _build_mlp(2, ...) of solo-learn's mocov3.py, ViT branch
    projector = keys(
        "projector",
        {0: ("weight",), 1: BN, 3: ("weight",), 4: BN, 6: ("weight",), 7: BN_NO_AFFINE},
    )
    predictor = keys("predictor", {0: ("weight",), 1: BN, 3: ("weight",), 4: BN_NO_AFFINE})
    assert head_keys(model, "projector") == projector
    assert head_keys(model, "momentum_projector") == {"momentum_" + k for k in projector}
    assert head_keys(model, "predictor") == predictor
    for head in (model.projector, model.predictor, model.momentum_projector):
        assert all(m.bias is None for m in head.modules() if isinstance(m, torch.nn.Linear))
        assert not head[-1].affine and isinstance(head[-1], torch.nn.BatchNorm1d)


def test_mocov3_resnet_heads_have_upstreams_keys(build_method) -> None:
    model = build_method("mocov3", ["backbone.name=resnet18"])
    # ResNet branch: 2-layer projector with the affine-free BN, 2-layer predictor without it
    projector = keys("projector", {0: ("weight",), 1: BN, 3: ("weight",), 4: BN_NO_AFFINE})
    assert head_keys(model, "projector") == projector
    assert head_keys(model, "predictor") == keys(
        "predictor", {0: ("weight",), 1: BN, 3: ("weight",)}
    )
    assert isinstance(model.predictor[-1], torch.nn.Linear) and model.predictor[-1].bias is None


def test_mocov3_vit_checkpoint_backbone_loads_strictly(build_builtin_method) -> None:
    model = build_builtin_method("mocov3", MOCO_VIT)
    state = {
        k.removeprefix("backbone."): v
        for k, v in model.state_dict().items()
        if k.startswith("backbone.")
    }
    fresh = build_backbone("vit_small", method="mocov3", img_size=32, patch_size=16, depth=1)
    fresh.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 32, 32)
    model.backbone.eval(), fresh.eval()
    torch.testing.assert_close(fresh(x), model.backbone(x))


def test_training_step_leaves_the_position_embedding_alone(build_builtin_method) -> None:
    model = build_builtin_method("mocov3", MOCO_VIT)
    before = model.backbone.pos_embed.detach().clone()
    qkv_before = model.backbone.blocks[0].attn.qkv.weight.detach().clone()
    optimizer = model.configure_optimizers()[0][0]
    model.log = lambda *args, **kwargs: None  # no trainer attached
    model.log_dict = lambda *args, **kwargs: None
    loss = model.training_step(two_crop_batch(size=32), 0)
    loss.backward()
    optimizer.step()
    assert model.backbone.pos_embed.grad is None
    torch.testing.assert_close(model.backbone.pos_embed, before, rtol=0, atol=0)
    assert not torch.equal(model.backbone.blocks[0].attn.qkv.weight, qkv_before)  # it trained
