# SPDX-License-Identifier: MIT
"""Projector and predictor MLPs, written once instead of inline in every method.

The layer order (Linear, [BatchNorm1d], ReLU, ..., Linear [, BatchNorm1d]) and the ``nn.Sequential``
nesting match solo-learn's, so state_dict keys such as ``projector.0.weight`` line up with its
checkpoints. MoCo v3's MLPs have bias-free Linears (``bias=False``), as upstream.
"""

from __future__ import annotations

from torch import nn


def mlp(
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    *,
    num_layers: int = 2,
    batch_norm: bool = False,
    last_batch_norm: bool = False,
    bias: bool = True,
) -> nn.Sequential:
    """A ``num_layers``-layer MLP: hidden layers are Linear [+ BatchNorm1d] + ReLU.

    Args:
        in_dim: input features.
        hidden_dim: width of the hidden layers.
        out_dim: output features.
        num_layers: number of Linear layers (>= 1).
        batch_norm: put BatchNorm1d after each hidden Linear.
        last_batch_norm: end with a BatchNorm1d without affine parameters (MoCo v3 style).
        bias: give the Linear layers a bias (MoCo v3's have none).

    Returns:
        The MLP as an ``nn.Sequential``.
    """
    layers: list[nn.Module] = []
    dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        last = i == num_layers - 1
        layers.append(nn.Linear(d_in, d_out, bias=bias))
        if not last:
            if batch_norm:
                layers.append(nn.BatchNorm1d(d_out))
            layers.append(nn.ReLU(inplace=True))
    if last_batch_norm:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)
