# SPDX-License-Identifier: MIT
"""Per-step schedules: warmup-cosine and the EMA tau."""

from __future__ import annotations

import math

import pytest
import torch

from solo_diversity.budget.schedules import cosine_tau, warmup_cosine
from solo_diversity.methods.optim import LARS, SchedulerSettings, build_scheduler


def test_warmup_rises_linearly_to_base_then_decays_to_final():
    values = [warmup_cosine(s, 10, 3, base=1.0, warmup_start=0.1, final=0.0) for s in range(11)]
    assert values[:3] == pytest.approx([0.1, 0.55, 1.0])
    assert values[3] == pytest.approx(1.0)
    assert values[10] == pytest.approx(0.0, abs=1e-12)
    assert values[3 + 7 // 2] == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 7)))


def test_cosine_tau_goes_from_base_to_final():
    assert cosine_tau(0, 100, 0.99, 1.0) == pytest.approx(0.99)
    assert cosine_tau(50, 100, 0.99, 1.0) == pytest.approx(0.995)
    assert cosine_tau(100, 100, 0.99, 1.0) == pytest.approx(1.0)


def test_scheduler_gives_each_group_its_own_curve_and_keeps_static_groups():
    a, b, c = (torch.nn.Parameter(torch.ones(2)) for _ in range(3))
    opt = torch.optim.SGD(
        [{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}, {"params": [c], "lr": 0.5}], lr=1.0
    )
    opt.param_groups[2]["static_lr"] = True
    sched = build_scheduler(
        opt,
        SchedulerSettings(
            "warmup_cosine", total_steps=10, warmup_steps=2, warmup_start_lr=0.01, min_lr=0.0
        ),
    )
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.01, 0.5])
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1.0, 0.1, 0.5])


def test_lars_step_matches_its_formula():
    torch.manual_seed(0)
    w = torch.randn(4, 3)
    g = torch.randn(4, 3)
    bias = torch.randn(4)
    p, q = torch.nn.Parameter(w.clone()), torch.nn.Parameter(bias.clone())
    p.grad, q.grad = g.clone(), torch.ones(4)
    lr, wd, eta = 0.5, 1e-2, 0.02
    LARS(
        [p, q],
        lr=lr,
        momentum=0.9,
        weight_decay=wd,
        eta=eta,
        clip_lr=True,
        exclude_bias_n_norm=True,
    ).step()
    rate = min(eta * w.norm() / (g.norm() + wd * w.norm() + 1e-8) / lr, 1.0)
    assert torch.allclose(p.data, w - lr * rate * (g + wd * w), atol=1e-6)
    assert torch.allclose(q.data, bias - lr * torch.ones(4))  # 1-d: plain SGD, no adaptation
