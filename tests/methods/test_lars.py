# SPDX-License-Identifier: MIT
"""LARS: the layer-wise rate, its clip, and the layers it leaves alone, against the formula."""

from __future__ import annotations

import pytest
import torch

from solo_diversity.methods.optim import LARS


def _expected(p, g, lr, wd, eta, eps, clip):
    """One step from zero momentum: the rate where both norms are non-zero, else the raw grad."""
    p_norm, g_norm = p.norm(), g.norm()
    if p_norm == 0 or g_norm == 0:
        return p - lr * g
    rate = eta * p_norm / (g_norm + p_norm * wd + eps)
    if clip:
        rate = min(rate / lr, torch.tensor(1.0))
    return p - lr * (g + wd * p) * rate


@pytest.mark.parametrize("clip", [False, True])
def test_one_step_follows_the_lars_formula_and_skips_zero_norm_layers(clip):
    torch.manual_seed(0)
    weights = [torch.randn(4, 3), torch.zeros(5, 2), torch.randn(6, 2)]
    grads = [torch.randn(4, 3), torch.randn(5, 2), torch.zeros(6, 2)]  # 2nd: p = 0, 3rd: g = 0
    params = [torch.nn.Parameter(w.clone()) for w in weights]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    lr, wd, eta, eps = 0.3, 1e-4, 0.02, 1e-8
    LARS(params, lr=lr, weight_decay=wd, eta=eta, eps=eps, clip_lr=clip).step()
    for p, w, g in zip(params, weights, grads, strict=True):
        torch.testing.assert_close(
            p.detach(), _expected(w, g, lr, wd, eta, eps, clip), rtol=0, atol=1e-7
        )
    assert not torch.equal(params[0].detach(), weights[0] - lr * grads[0])  # really rescaled
