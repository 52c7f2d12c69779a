# SPDX-License-Identifier: MIT
"""This project's warnings reach stderr exactly once, although the configs disable job logging."""

from __future__ import annotations

import sys

from tests import zygote
from tests.conftest import REPO
from tests.data.png_indexes import digits_png_index


def pretrain(tmp_path, *overrides):
    return zygote.run(
        [
            sys.executable,
            str(REPO / "main_pretrain.py"),
            "--config-name",
            "simclr_div",
            "data.val_path=null",
            "data.num_workers=0",
            "optimizer.batch_size=32",
            "budget.C=64",
            "budget.allow_late_switches=true",
            "+backbone.kwargs.width=8",
            "checkpoint.enabled=false",
            *overrides,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_precision_16_on_the_cpu_and_an_unreadable_image_warn_once(tmp_path, digits_indexes):
    train = digits_png_index(digits_indexes["train"], tmp_path, 0.002)  # 3 of 1,438 garbage
    proc = pretrain(tmp_path, f"data.train_path={train}", "precision=16-mixed", "budget.C=2876")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    precision = (
        "WARNING solo_diversity.run.pretrain: precision=16-mixed is GPU-only; using 32-true on"
    )
    assert sum(line.startswith(precision) for line in lines) == 1
    unreadable = [line for line in lines if "unreadable image" in line]
    # Two passes read each of the 3 garbage files twice; each is named once.
    assert len(unreadable) == 3 and len(set(unreadable)) == 3
    assert all(
        line.startswith("WARNING solo_diversity.data.datasets: unreadable") for line in unreadable
    )


def test_an_unused_budget_key_warns_once_on_the_console(tmp_path, digits_indexes):
    proc = pretrain(
        tmp_path,
        f"data.train_path={digits_indexes['train']}",
        "++budget.mode=epochs",
        "++budget.epochs=0.1",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if "is ignored" in line]
    assert lines == [
        "WARNING solo_diversity.config.pretrain: budget.C=64 is ignored: budget.mode=epochs sets "
        "C = N x budget.epochs and counts the schedule in its own epochs (N_ref = N)"
    ]
