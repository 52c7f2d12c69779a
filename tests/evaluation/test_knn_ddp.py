# SPDX-License-Identifier: MIT
"""The online kNN bank under torch.distributed: 2 gloo processes equal one process on all data."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from solo_diversity.methods.knn import OnlineKNN, knn_accuracy


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 8, generator=g) * 2
    y_train, y_test = (
        torch.randint(0, 4, (90,), generator=g),
        torch.randint(0, 4, (31,), generator=g),
    )
    train = centres[y_train] + torch.randn(90, 8, generator=g)
    test = centres[y_test] + torch.randn(31, 8, generator=g)
    return train, y_train, test, y_test


def _rank(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    train, y_train, test, y_test = _data()
    knn = OnlineKNN(8, 4, capacity=100, k=10, distance="euclidean")
    # unequal shards of the training bank (60 / 30 rows), disjoint halves of the test set
    lo, hi = (0, 60) if rank == 0 else (60, 90)
    knn.add_train(train[lo:hi], y_train[lo:hi])
    t_lo, t_hi = (0, 16) if rank == 0 else (16, 31)
    knn.add_test(test[t_lo:t_hi], y_test[t_lo:t_hi])
    Path(out, f"{rank}.json").write_text(json.dumps(knn.compute()))
    dist.destroy_process_group()


def test_two_ranks_gather_the_bank_and_sum_the_hits(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank, args=(port, str(tmp_path)), nprocs=2, join=True)
    train, y_train, test, y_test = _data()
    expected = list(
        knn_accuracy(train, y_train, test, y_test, k=10, distance="euclidean", num_classes=4)
    )
    assert 0 < expected[0] < 100  # not a trivial case
    for rank in (0, 1):
        assert json.loads((tmp_path / f"{rank}.json").read_text()) == expected
