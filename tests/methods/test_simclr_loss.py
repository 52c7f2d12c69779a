# SPDX-License-Identifier: MIT
"""SimCLR's loss against lightly's NT-Xent and against its formula with several crops."""

from __future__ import annotations

import math

import torch
from lightly.loss import NTXentLoss

from solo_diversity.methods.losses import simclr_loss


def test_two_views_equal_lightly_ntxent():
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 5), torch.randn(6, 5)
    ours = simclr_loss(torch.cat([z1, z2]), torch.arange(6).repeat(2), temperature=0.2)
    reference = NTXentLoss(temperature=0.2)(z1, z2)
    assert torch.allclose(ours, reference, atol=1e-5)


def test_three_crops_follow_the_multi_positive_formula():
    torch.manual_seed(1)
    z = torch.nn.functional.normalize(torch.randn(9, 4), dim=1)  # 3 images x 3 crops
    idx = torch.arange(3).repeat(3)
    expected = 0.0
    for i in range(9):
        sims = {j: math.exp(float(z[i] @ z[j]) / 0.5) for j in range(9) if j != i}
        positives = sum(v for j, v in sims.items() if idx[j] == idx[i])
        expected += -math.log(positives / sum(sims.values()))
    assert abs(simclr_loss(z, idx, temperature=0.5).item() - expected / 9) < 1e-5


def test_loss_decreases_when_optimised():
    torch.manual_seed(2)
    z = torch.randn(16, 8, requires_grad=True)
    idx = torch.arange(8).repeat(2)
    opt = torch.optim.SGD([z], lr=0.5)
    first = simclr_loss(z, idx, 0.2).item()
    for _ in range(20):
        opt.zero_grad()
        loss = simclr_loss(z, idx, 0.2)
        loss.backward()
        opt.step()
    assert loss.item() < first - 0.5
