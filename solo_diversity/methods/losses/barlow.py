# SPDX-License-Identifier: MIT
"""Barlow Twins' loss (Zbontar et al., arXiv:2103.03230) with solo-learn's ``scale_loss``.

``loss = scale * [sum_i (1 - C_ii)^2 + lamb * sum_{i != j} C_ij^2]`` where C is the
cross-correlation of the projections, each standardised over its own process's batch (biased
variance, eps 1e-5: ``BatchNorm1d(affine=False)`` in training mode), and averaged over processes.

Across processes this follows solo-learn's ``barlow_loss_func`` exactly: it sums the per-process
matrices with a plain (not autograd-aware) ``all_reduce`` and divides by the world size, so the
loss value is that of the averaged matrix while each process's gradient flows only through its
own share, 1/W of it. After DDP averages the gradients, the update is the exact gradient divided
by W. lightly's ``BarlowTwinsLoss`` (an autograd-aware all-reduce) gives the exact gradient
instead, i.e. W times solo-learn's; on one process the two are identical. We keep solo-learn's
scaling because the paper's multi-GPU runs trained with it. Written by hand because neither
library exposes this choice.
"""

from __future__ import annotations

import torch

from solo_diversity.methods.distributed import world_info

BN_EPS = 1e-5


def _standardise(z: torch.Tensor) -> torch.Tensor:
    """(B, D) -> per-dimension zero mean, unit (biased) variance over the batch."""
    mean = z.mean(dim=0)
    var = z.var(dim=0, unbiased=False)
    return (z - mean) / torch.sqrt(var + BN_EPS)


def cross_correlation(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """(D, D) cross-correlation of two (B, D) batches, averaged over processes (see module)."""
    corr = _standardise(z1).T @ _standardise(z2) / z1.size(0)
    _, world = world_info()
    if world == 1:
        return corr
    total = corr.detach().clone()
    torch.distributed.all_reduce(total)
    # Value: the mean over processes. Gradient: only through this process's own share (1/W).
    return corr / world + (total - corr.detach()) / world


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
    corr = cross_correlation(z1.float(), z2.float())
    on_diag = (torch.diagonal(corr) - 1).pow(2).sum()
    off_diag = corr.pow(2).sum() - torch.diagonal(corr).pow(2).sum()
    return scale_loss * (on_diag + lamb * off_diag)
