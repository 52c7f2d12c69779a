# SPDX-License-Identifier: MIT
"""Lightning DDP on the CPU with 2 processes (gloo): one run id, sharded data, an exact ledger."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("data_format", ["h5", "dali"])
def test_two_process_ddp_run_has_an_exact_global_ledger(tmp_path, digits_indexes, data_format):
    cmd = [
        sys.executable,
        str(REPO / "main_pretrain.py"),
        "--config-name",
        "simclr_div",
        f"data.train_path={digits_indexes['train']}",
        f"data.val_path={digits_indexes['test']}",
        "budget.C=2000",
        "budget.allow_late_switches=true",  # 31 steps: the warmup is clamped to the run
        "optimizer.batch_size=32",
        "data.num_workers=0",
        "+backbone.kwargs.width=8",
        "accelerator=cpu",
        "devices=2",
        "strategy=ddp",
        f"data.format={data_format}",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run_dir,) = (tmp_path / "trained_models" / "simclr").iterdir()  # both ranks share one run id
    ledger = json.loads((run_dir / "ledger.json").read_text())
    assert ledger["world_size"] == 2 and ledger["global_batch"] == 64
    assert ledger["images_seen"] == ledger["C_eff"] == 31 * 64 and ledger["optimizer_steps"] == 31
    assert ledger["images_per_step_rank0"] == {"32": 31}
    assert len(list(run_dir.glob("*.ckpt"))) == 1
