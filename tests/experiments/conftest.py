# SPDX-License-Identifier: MIT
"""A tiny cell list on the digits (two subset sizes, one probe each) in a copy of the configs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "table": "tiny_digits",
    "paper": "none",
    "title": "two digits cells for the tests",
    "linear": {"max_epochs": 1, "scheduler.lr_decay_steps": [1], "data.num_workers": 0},
    "base": {
        "config": "simclr_div",
        "overrides": {
            "budget.C": 1280,
            "optimizer.batch_size": 64,
            "data.num_workers": 0,
            "method_kwargs.proj_hidden_dim": 32,
            "method_kwargs.proj_output_dim": 16,
            "scheduler.warmup_epochs": 0,  # 20 steps: 10 subset epochs would outlast the run
        },
        "probes": [{"dataset": "digits", "label_fraction": 1.0, "mode": "protocol"}],
    },
    "axes": [
        {
            "name": "fraction",
            "values": [
                {"key": "f0.1", "overrides": {"data.fraction": 0.1}},
                {"key": "f0.5", "overrides": {"data.fraction": 0.5}},
            ],
        }
    ],
}


@pytest.fixture
def tiny_configs(tmp_path: Path) -> Path:
    """``yaml_configs`` copied, plus ``experiments/tiny_digits.yaml``."""
    configs = tmp_path / "yaml_configs"
    shutil.copytree(REPO / "yaml_configs", configs)
    (configs / "experiments" / "tiny_digits.yaml").write_text(yaml.safe_dump(TINY))
    return configs
