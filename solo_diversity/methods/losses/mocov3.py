# SPDX-License-Identifier: MIT
"""MoCo v3's contrastive loss (Chen, Xie and He, arXiv:2104.02057), as solo-learn computes it.

Hand-written: lightly's ``NTXentLoss`` contrasts both views against each other (SimCLR-style
negatives) and has no ``2 * t`` factor; MoCo v3 contrasts queries only against the (gathered)
teacher keys, and solo-learn scales the cross-entropy by ``2 * t`` as the official code does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

from solo_diversity.methods.distributed import gather_with_grad, world_info


def mocov3_loss(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """InfoNCE of queries against keys, the positive of query i being key i of this rank.

    ``loss = 2t * CE(q_n k_n^T / t, labels)`` with q_n, k_n the L2-normalised rows; keys of all
    processes are negatives.

    Args:
        query: (B, D) student predictions.
        key: (B, D) teacher projections (no gradient needed).
        temperature: t.

    Returns:
        Scalar loss.
    """
    n = query.size(0)
    rank, _ = world_info()
    q = F.normalize(query.float(), dim=-1)
    k = gather_with_grad(F.normalize(key.float(), dim=-1))
    logits = q @ k.T / temperature
    labels = torch.arange(n, device=query.device) + rank * n
    return F.cross_entropy(logits, labels) * 2 * temperature
