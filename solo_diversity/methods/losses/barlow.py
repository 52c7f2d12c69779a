# SPDX-License-Identifier: MIT
"""Barlow Twins' loss (Zbontar et al., arXiv:2103.03230) with solo-learn's ``scale_loss``.

``loss = scale * [sum_i (1 - C_ii)^2 + lamb * sum_{i != j} C_ij^2]`` where C is the
cross-correlation of the batch-normalised projections (biased variance, eps 1e-5), averaged over
processes. lightly's ``BarlowTwinsLoss`` computes exactly the bracket (same normalisation, same
all-reduce), so it is used and only multiplied by ``scale_loss``.
"""

from __future__ import annotations

import torch
from lightly.loss import BarlowTwinsLoss


def barlow_loss(
    z1: torch.Tensor, z2: torch.Tensor, lamb: float = 0.0051, scale_loss: float = 0.024
) -> torch.Tensor:
    """Scaled Barlow Twins redundancy-reduction loss.

    Args:
        z1: (B, D) projections of the first view.
        z2: (B, D) projections of the second view.
        lamb: weight of the off-diagonal terms.
        scale_loss: overall factor (solo-learn's ``scale_loss``).

    Returns:
        Scalar loss.
    """
    loss = BarlowTwinsLoss(lambda_param=lamb, gather_distributed=True)
    return scale_loss * loss(z1.float(), z2.float())
