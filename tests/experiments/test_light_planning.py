# SPDX-License-Identifier: MIT
"""Planning a sweep needs neither torch nor Lightning, and counts devices as Lightning does."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from solo_diversity.config.cell import cell_global_batch
from solo_diversity.methods.settings import count_devices

PLANNING = (
    "solo_diversity.experiments.run_cli",
    "solo_diversity.experiments.launch",
    "solo_diversity.experiments.runner",
    "solo_diversity.experiments.status",
    "solo_diversity.experiments.cost",
    "solo_diversity.experiments.distances",
)


def test_the_planning_modules_load_no_torch():
    code = (
        f"import sys; import {', '.join(PLANNING)}; "
        "print(sorted(m for m in ('torch', 'lightning', 'solo_diversity.methods') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("devices", [1, 2, 3, 8, "auto", "2", [0, 1], "0,1,2"])
def test_a_cells_global_batch_counts_devices_as_lightning(devices):
    cfg = OmegaConf.create({"devices": devices, "num_nodes": 2, "optimizer": {"batch_size": 64}})
    assert cell_global_batch(cfg) == 64 * count_devices(devices, "cpu") * 2
