# SPDX-License-Identifier: MIT
"""VICReg's loss (Bardes, Ponce and LeCun, arXiv:2105.04906) with solo-learn's weighting.

``loss = l * mse(z1, z2) + m * [v(z1) + v(z2)] + n * [c(z1) + c(z2)]`` with
``v(z) = mean_d relu(1 - sqrt(var_d(z) + 1e-4))`` and ``c(z) = sum_{i != j} C(z)_ij^2 / D``
(C the unbiased covariance). The terms are lightly's functions; lightly's ``VICRegLoss`` itself is
not used because it halves the variance term (``0.5 * [v(z1) + v(z2)]``), which solo-learn (and
the paper's runs) do not. Variance and covariance use the gathered global batch.
"""

from __future__ import annotations

import torch
from lightly.loss.vicreg_loss import covariance_loss, invariance_loss, variance_loss

from solo_diversity.methods.distributed import gather_with_grad


def vicreg_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    sim_loss_weight: float = 25.0,
    var_loss_weight: float = 25.0,
    cov_loss_weight: float = 1.0,
) -> torch.Tensor:
    """Weighted invariance + variance + covariance terms.

    Args:
        z1: (B, D) projections of the first view.
        z2: (B, D) projections of the second view.
        sim_loss_weight: l.
        var_loss_weight: m.
        cov_loss_weight: n.

    Returns:
        Scalar loss.
    """
    z1, z2 = z1.float(), z2.float()
    sim = invariance_loss(z1, z2)
    g1, g2 = gather_with_grad(z1), gather_with_grad(z2)
    var = variance_loss(g1) + variance_loss(g2)
    cov = covariance_loss(g1) + covariance_loss(g2)
    return sim_loss_weight * sim + var_loss_weight * var + cov_loss_weight * cov
