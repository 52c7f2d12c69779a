# SPDX-License-Identifier: MIT
"""MoCo v3's Vision Transformer: timm's ViT with a fixed 2-D sin-cos position embedding.

MoCo v3 (Chen, Xie and He, arXiv:2104.02057, section 4) trains ViTs more stably with a frozen
position embedding and its own initialisation; solo-learn builds this variant whenever the method
is ``mocov3``. The network is timm's ``VisionTransformer`` (so state_dict keys are timm's, as
upstream), with:

- ``pos_embed`` (1, 1 + h*w, D): a zero row for the class token, then for patch token m with grid
  coordinates ``a = m // h`` and ``b = m % h`` (MoCo v3's ordering) the row
  ``[sin(a w), cos(a w), sin(b w), cos(b w)]``, ``w_k = 10000^(-k / (D/4))``, k < D/4; it is an
  ``nn.Parameter`` with ``requires_grad=False``;
- every Linear: Xavier-uniform, except ``qkv`` layers, drawn from U(-v, v) with
  ``v = sqrt(6 / (out/3 + in))`` (Q, K and V treated as three layers); biases 0;
- the patch projection: U(-v, v) with ``v = sqrt(6 / (3 * patch_h * patch_w + D))``, bias 0;
- the class token: N(0, 1e-6^2).

Sizes follow solo-learn's MoCo v3 constructors: depth 12, MLP ratio 4, qkv bias, LayerNorm with
eps 1e-6, and 12 heads for both ViT-S (D=384) and ViT-B (D=768). timm is imported here, so import
this module only when a ViT is built.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer import VisionTransformer
from torch import nn

# name -> (embed_dim, depth, num_heads) of solo-learn's MoCo v3 ViTs
MOCOV3_VIT_SIZES: dict[str, tuple[int, int, int]] = {
    "vit_small": (384, 12, 12),
    "vit_base": (768, 12, 12),
}


def sincos_2d_position_embedding(
    grid_h: int, grid_w: int, dim: int, temperature: float = 10000.0
) -> torch.Tensor:
    """MoCo v3's fixed position embedding of a ``grid_h`` x ``grid_w`` patch grid, class row first.

    Args:
        grid_h: patch rows.
        grid_w: patch columns.
        dim: embedding size D, a multiple of 4.
        temperature: base of the frequencies.

    Returns:
        (1, 1 + grid_h * grid_w, D) float32; row 0 (the class token) is zero.
    """
    if dim % 4:
        raise ValueError(f"the 2-D sin-cos embedding needs a dimension divisible by 4, got {dim}")
    quarter = dim // 4
    freqs = 1.0 / temperature ** (torch.arange(quarter, dtype=torch.float32) / quarter)  # (D/4,)
    first = torch.arange(grid_w, dtype=torch.float32).repeat_interleave(grid_h)  # (h*w,)
    second = torch.arange(grid_h, dtype=torch.float32).repeat(grid_w)  # (h*w,)
    angle_a = first[:, None] * freqs[None, :]
    angle_b = second[:, None] * freqs[None, :]
    patches = torch.cat(
        [angle_a.sin(), angle_a.cos(), angle_b.sin(), angle_b.cos()], dim=1
    )  # (h*w, D)
    return torch.cat([torch.zeros(1, dim), patches], dim=0)[None]


def _uniform_bound(fan_sum: float) -> float:
    return math.sqrt(6.0 / fan_sum)


class VisionTransformerMoCo(VisionTransformer):
    """timm's VisionTransformer with MoCo v3's frozen position embedding and initialisation.

    Args:
        **kwargs: timm ``VisionTransformer`` arguments (``img_size``, ``patch_size``,
            ``embed_dim``, ...); it must have exactly one prefix token (the class token).
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.cls_token is None or self.num_prefix_tokens != 1:
            raise ValueError("MoCo v3's ViT has exactly one prefix token (the class token)")
        grid_h, grid_w = self.patch_embed.grid_size
        table = sincos_2d_position_embedding(int(grid_h), int(grid_w), self.embed_dim)
        self.pos_embed = nn.Parameter(table, requires_grad=False)
        self._init_mocov3_weights()

    @torch.no_grad()
    def _init_mocov3_weights(self) -> None:
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                out_dim, in_dim = module.weight.shape
                if "qkv" in name:
                    bound = _uniform_bound(out_dim // 3 + in_dim)
                    nn.init.uniform_(module.weight, -bound, bound)
                else:
                    nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        assert self.cls_token is not None  # checked in __init__: one prefix token
        nn.init.normal_(self.cls_token, std=1e-6)
        if isinstance(self.patch_embed, PatchEmbed):
            proj = self.patch_embed.proj
            patch_area = math.prod(self.patch_embed.patch_size)
            bound = _uniform_bound(3 * patch_area + self.embed_dim)
            nn.init.uniform_(proj.weight, -bound, bound)
            if proj.bias is not None:
                nn.init.zeros_(proj.bias)


def mocov3_vit(name: str, **kwargs: Any) -> VisionTransformerMoCo:
    """Build MoCo v3's ``vit_small`` or ``vit_base`` (no classification head).

    Args:
        name: a key of :data:`MOCOV3_VIT_SIZES`.
        **kwargs: further ``VisionTransformer`` arguments, e.g. ``img_size`` and ``patch_size``.

    Returns:
        A module mapping (B, 3, H, W) to (B, D) class-token features.
    """
    embed_dim, depth, heads = MOCOV3_VIT_SIZES[name]
    options: dict[str, Any] = {
        "embed_dim": embed_dim,
        "depth": depth,
        "num_heads": heads,
        "mlp_ratio": 4,
        "qkv_bias": True,
        "norm_layer": partial(nn.LayerNorm, eps=1e-6),
        "num_classes": 0,
        **kwargs,
    }
    return VisionTransformerMoCo(**options)
