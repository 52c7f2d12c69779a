# SPDX-License-Identifier: MIT
"""Each bad input to a pretraining run gets its own one-line message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from solo_diversity.errors import UserError
from solo_diversity.pretrain import run_pretrain
from tests.conftest import REPO


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.fraction=0"], r"^data.fraction=0 must be in \(0, 1\], or -1 for all images$"),
        (["data.fraction=1.5"], r"^data.fraction=1.5 must be in \(0, 1\], or -1 for all images$"),
        (["budget.C=100"], r"^budget C=100 images is smaller than one global batch of 128 images$"),
        (
            ["data.fraction=0.05"],
            r"^the subset has N=72 images, fewer than one global batch of 128",
        ),
        (["method=simclrr"], r"^unknown method 'simclrr'; choose one of .*simclr"),
        (["backbone.name=resnet19"], r"^unknown backbone 'resnet19'; choose one of .*resnet18"),
        (
            ["+budget.c=5"],
            r"^unknown key budget.c; the budget group takes C, mode, epochs, reference_size, "
            r"epoch_keys, allow_late_switches$",
        ),
        (["data.dataset=cifar100"], r"holds dataset 'digits'.*cifar100"),
    ],
)
def test_bad_run_inputs(compose_cfg, overrides, message):
    with pytest.raises(UserError, match=message):
        run_pretrain(compose_cfg(overrides=overrides))


def test_missing_index_of_a_dataset_that_cannot_be_built(compose_cfg, tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(UserError, match="nope.h5"):
        run_pretrain(compose_cfg(overrides=["data.dataset=custom", f"data.train_path={missing}"]))


def test_corrupt_index(compose_cfg, tmp_path):
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(UserError, match="corrupt.h5"):
        run_pretrain(compose_cfg(overrides=[f"data.train_path={corrupt}"]))


def test_the_entry_point_prints_one_line_and_exits_2(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "main_pretrain.py"),
            "--config-name",
            "simclr_div",
            "data.fraction=2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines()[-1]
        == "error: data.fraction=2 must be in (0, 1], or -1 for all images"
    )
    assert "Traceback" not in proc.stderr
