# SPDX-License-Identifier: MIT
"""BYOL's regression loss (Grill et al., arXiv:2006.07733): ``2 - 2 cos(p, z)``.

Built on lightly's ``NegativeCosineSimilarity`` (-mean cos, eps 1e-8), which is solo-learn's
formula up to the affine map ``2 + 2 * (-cos)``.
"""

from __future__ import annotations

import torch
from lightly.loss import NegativeCosineSimilarity

_NEG_COS = NegativeCosineSimilarity(dim=-1)


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``2 - 2 * mean_i cos(p_i, sg(z_i))``.

    Args:
        p: (B, D) student predictions.
        z: (B, D) teacher projections; detached here (stop-gradient).

    Returns:
        Scalar loss in [0, 4].
    """
    return 2 + 2 * _NEG_COS(p.float(), z.detach().float())
