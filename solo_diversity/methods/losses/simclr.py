# SPDX-License-Identifier: MIT
"""SimCLR's NT-Xent loss (Chen et al., arXiv:2002.05709) with solo-learn's index-based positives.

Hand-written because library versions (lightly's ``NTXentLoss``) take exactly two views, while
solo-learn finds positives by sample index: every crop of the same image is a positive, so any
number of crops works. For two views both give the same value, which the tests check.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

from solo_diversity.methods.distributed import gather_with_grad, world_info


def simclr_loss(z: torch.Tensor, indexes: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent over all crops in the (global) batch.

    For anchor i with cosine similarities s_ij / t to every other crop j,
    ``loss_i = -log( sum_{j in P(i)} exp(s_ij/t) / sum_{j != i} exp(s_ij/t) )`` where P(i) holds
    the other crops of the same image. The result is the mean over anchors.

    Args:
        z: (n_crops * B, D) projections of the local batch, crops stacked along dim 0.
        indexes: (n_crops * B,) image index of each row; equal indexes are positives.
        temperature: t.

    Returns:
        Scalar loss.
    """
    z = F.normalize(z.float(), dim=-1)
    all_z = gather_with_grad(z)
    all_idx = gather_with_grad(indexes)
    rank, _ = world_info()
    logits = z @ all_z.T / temperature
    n = z.size(0)
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[torch.arange(n), torch.arange(n) + rank * n] = True
    same = indexes[:, None] == all_idx[None, :]
    pos = same & ~self_mask
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_pos = torch.logsumexp(logits.masked_fill(~pos, float("-inf")), dim=1)
    log_all = torch.logsumexp(logits, dim=1)
    return (log_all - log_pos).mean()
