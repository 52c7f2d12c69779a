# SPDX-License-Identifier: MIT
"""Where a result line came from: its sweep cell, when, with which code, on which device.

Every line a probe appends (``main_linear.py``, ``main_knn.py``) carries these fields, so two
results files can be compared cell by cell (``solo-div report compare``) and a number traced back
to the code and machine that made it. The sweep runner names the cell through the environment
(:data:`SWEEP_ENV`), which leaves the probe command the same one a user types; a probe run by hand
has ``null`` there. Lines written before these fields existed still load: every reader uses
``record.get``.
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

import solo_diversity

# Result-line field -> the environment variable the sweep runner sets for its probes.
SWEEP_ENV = {
    "table": "SOLO_DIV_TABLE",
    "cell": "SOLO_DIV_CELL",
    "run_key": "SOLO_DIV_RUN_KEY",
    "pretrain_seconds": "SOLO_DIV_PRETRAIN_SECONDS",
}


def git_commit(folder: Path | None = None) -> str | None:
    """The commit checked out at ``folder`` (default: this package's), or None outside git."""
    where = folder or Path(solo_diversity.__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def device_name(accelerator: str) -> str:
    """``cpu``, or the GPU's name (``NVIDIA H100 80GB HBM3``) when ``accelerator`` uses one."""
    if accelerator in ("gpu", "cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.cuda.current_device())
    return "cpu" if accelerator in ("cpu", "auto") else accelerator


def _seconds(text: str | None) -> float | None:
    try:
        return round(float(text), 2) if text else None
    except ValueError:
        return None


def provenance(accelerator: str) -> dict[str, Any]:
    """The provenance fields of one result line.

    Args:
        accelerator: the device kind the probe ran on (``cpu``, ``gpu``, ``cuda``, ``mps``).

    Returns:
        ``table``, ``cell``, ``run_key``, ``pretrain_seconds`` (the sweep's, else None),
        ``timestamp`` (UTC, ISO 8601), ``version``, ``git_commit`` (None outside git) and
        ``device``.
    """
    sweep: dict[str, Any] = {key: os.environ.get(var) or None for key, var in SWEEP_ENV.items()}
    sweep["pretrain_seconds"] = _seconds(sweep["pretrain_seconds"])
    return {
        **sweep,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "version": solo_diversity.__version__,
        "git_commit": git_commit(),
        "device": device_name(accelerator),
    }
