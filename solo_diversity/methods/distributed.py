# SPDX-License-Identifier: MIT
"""Cross-process gathering for losses whose negatives span the global batch.

The gather is a small autograd function: torch's public differentiable ``all_gather`` is deprecated
in favour of a private module, and the gradient rule is short. Each process receives the sum over
processes of the gradient for its own slice, as in SimCLR's and solo-learn's implementations.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def world_info() -> tuple[int, int]:
    """(rank, world_size) of the default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every process along dim 0, keeping the gradient of the local part.

    Args:
        x: (B, ...) local tensor.

    Returns:
        (world_size * B, ...) tensor; just ``x`` when not distributed.
    """
    _, world = world_info()
    if world == 1:
        return x
    return _GatherWithGrad.apply(x)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        rank, world = world_info()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.size = rank, x.size(0)
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.size : (ctx.rank + 1) * ctx.size]
