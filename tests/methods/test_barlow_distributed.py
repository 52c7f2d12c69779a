# SPDX-License-Identifier: MIT
"""Barlow Twins across 2 gloo processes: the loss of the averaged matrix, solo-learn's gradient.

solo-learn all-reduces the per-process cross-correlation without autograd, so after DDP averages
the gradients a shared weight receives the exact gradient divided by the world size. The
reference here is computed in one process from the formula, independently of the loss code.
"""

from __future__ import annotations

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from solo_diversity.methods.losses import barlow_loss

WORLD, B, F_IN, D = 2, 8, 5, 4
LAMB, SCALE = 0.0051, 0.1


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return (
        torch.randn(WORLD * B, F_IN, generator=g),
        torch.randn(WORLD * B, F_IN, generator=g),
        torch.randn(F_IN, D, generator=g),
    )


def _reference() -> tuple[float, torch.Tensor]:
    """Loss of the mean of per-process matrices, and its exact gradient w.r.t. the weight."""
    x1, x2, w0 = _data()
    w = w0.clone().requires_grad_(True)
    mats = []
    for r in range(WORLD):
        a, b = x1[r * B : (r + 1) * B] @ w, x2[r * B : (r + 1) * B] @ w
        a = (a - a.mean(0)) / torch.sqrt(a.var(0, unbiased=False) + 1e-5)
        b = (b - b.mean(0)) / torch.sqrt(b.var(0, unbiased=False) + 1e-5)
        mats.append(a.T @ b / B)
    c = torch.stack(mats).mean(0)
    eye = torch.eye(D)
    loss = SCALE * (((c - eye) ** 2) * (eye + LAMB * (1 - eye))).sum()
    loss.backward()
    assert w.grad is not None
    return loss.item(), w.grad


def _worker(rank: int, port: int, out: dict) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    x1, x2, w0 = _data()
    w = w0.clone().requires_grad_(True)
    rows = slice(rank * B, (rank + 1) * B)
    loss = barlow_loss(x1[rows] @ w, x2[rows] @ w, LAMB, SCALE)
    loss.backward()
    assert w.grad is not None
    grad = w.grad.clone()
    dist.all_reduce(grad)
    grad /= WORLD  # what DDP does to every parameter's gradient
    out[rank] = (loss.item(), grad)
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_processes_give_the_averaged_loss_and_solo_learns_gradient_scale() -> None:
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(_free_port(), out), nprocs=WORLD, join=True)
    ref_loss, ref_grad = _reference()
    for rank in range(WORLD):
        loss, grad = out[rank]
        assert abs(loss - ref_loss) < 1e-5 * max(1.0, abs(ref_loss))
        torch.testing.assert_close(grad, ref_grad / WORLD, rtol=1e-4, atol=1e-6)
        # the exact gradient (lightly's choice) would be WORLD times larger
        assert not torch.allclose(grad, ref_grad, rtol=1e-2)
