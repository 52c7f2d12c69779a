# SPDX-License-Identifier: MIT
"""SwAV's swapped-prediction loss (Caron et al., arXiv:2006.09882) and its Sinkhorn codes.

``loss = mean over (a, v), v != a, of -mean_i sum_k q^a_ik log softmax(p^v_i / t)_k``, where
``q^a`` are the Sinkhorn-Knopp codes of large crop a and ``p^v`` the prototype scores of crop v.

The codes come from lightly's ``sinkhorn`` (``Q = exp(P / eps)^T``, then alternately normalised
rows and columns; its per-iteration ``/K`` is absorbed by the next column normalisation, so it
equals solo-learn's ``SinkhornKnopp``). The cross-entropy is written here because lightly's
``SwaVLoss`` computes the codes inside its forward from its own queue layout, while solo-learn
appends a per-crop queue of projections before the Sinkhorn step and then drops the queue rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lightly.loss.swav_loss import sinkhorn


def sinkhorn_codes(
    scores: torch.Tensor, *, iterations: int = 3, epsilon: float = 0.05, distributed: bool = False
) -> torch.Tensor:
    """Equal-partition soft assignments of rows to prototypes.

    Args:
        scores: (B, K) prototype scores (cosine similarities).
        iterations: Sinkhorn iterations.
        epsilon: entropy regularisation.
        distributed: normalise over the rows of all processes.

    Returns:
        (B, K) codes; each row sums to 1.
    """
    return sinkhorn(scores.detach().float(), iterations, epsilon, gather_distributed=distributed)


def swav_loss(
    preds: Sequence[torch.Tensor], assignments: Sequence[torch.Tensor], temperature: float = 0.1
) -> torch.Tensor:
    """Swapped prediction over every (assignment crop, other crop) pair.

    Args:
        preds: one (B, K) score tensor per crop, large crops first.
        assignments: one (B, K) code tensor per large crop.
        temperature: t.

    Returns:
        Scalar loss.
    """
    losses = []
    for a, codes in enumerate(assignments):
        for v, p in enumerate(preds):
            if v == a:
                continue
            log_p = torch.log_softmax(p.float() / temperature, dim=1)
            losses.append(-(codes * log_p).sum(dim=1).mean())
    return torch.stack(losses).mean()
