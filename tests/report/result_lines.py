# SPDX-License-Identifier: MIT
"""Result lines as the linear probe writes them, for the report tests."""

from __future__ import annotations

import json
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[2] / "yaml_configs"


def line(
    method,
    n,
    acc1,
    *,
    seed=0,
    dataset="cifar100",
    c=50_000_000,
    backbone="resnet18",
    mode="protocol",
    label_fraction=1.0,
    checkpoint="trained_models/x/last.ckpt",
):
    """A result line with the keys the linear probe writes."""
    return {
        "method": method,
        "dataset": dataset,
        "backbone": backbone,
        "C": c,
        "C_eff": c,
        "N": n,
        "D": n / c,
        "E": c / n,
        "fraction": None,
        "label_fraction": label_fraction,
        "seed": seed,
        "probe_seed": 5,
        "probe_mode": mode,
        "accuracy": acc1,
        "acc1": acc1,
        "acc5": 90.0,
        "checkpoint": checkpoint,
    }


def write_lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
