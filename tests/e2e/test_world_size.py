# SPDX-License-Identifier: MIT
"""Two externally launched gloo processes (2 "nodes" x ``devices=auto``): G is planned for both."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from tests import zygote
from tests.conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_devices_auto_on_two_nodes_plans_a_world_of_two(tmp_path, digits_indexes):
    cmd = [
        sys.executable,
        str(REPO / "main_pretrain.py"),
        "--config-name",
        "simclr_div",
        f"data.train_path={digits_indexes['train']}",
        "data.val_path=null",
        "budget.C=640",  # 10 steps of 2 x 32
        "budget.allow_late_switches=true",  # the warmup is clamped to the 10 steps
        "optimizer.batch_size=32",
        "data.num_workers=0",
        "+backbone.kwargs.width=8",
        "accelerator=cpu",
        "devices=auto",
        "+num_nodes=2",
    ]
    port = str(_free_port())
    procs = []
    for rank in (0, 1):  # what a cluster launcher does: one process per node, env-configured
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "WORLD_SIZE": "2",
            "NODE_RANK": str(rank),
            "RANK": str(rank),
            "LOCAL_RANK": "0",
        }
        procs.append(
            zygote.popen(
                cmd,
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    (run_dir,) = (tmp_path / "trained_models" / "simclr").iterdir()
    ledger = json.loads((run_dir / "ledger.json").read_text())
    assert ledger["world_size"] == 2 and ledger["global_batch"] == 64 and ledger["steps"] == 10
    assert ledger["images_seen"] == ledger["C_eff"] == 10 * 64 and ledger["match"]
    args = json.loads((run_dir / "args.json").read_text())
    assert args["budget_plan"]["world_size"] == 2 and args["devices"] == "auto"
