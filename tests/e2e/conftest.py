# SPDX-License-Identifier: MIT
"""The uninterrupted exact-resume run that the kill, signal and full-disk tests compare against."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.e2e.resume_runs import child_command, final_state, run_to_end


@pytest.fixture(scope="session")
def reference(
    digits_indexes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, torch.Tensor], dict, np.ndarray]:
    """The uninterrupted run (num_workers=0) that every resumed run must equal.

    Session-scoped: the modules of one worker share a single run (a child of about 30 steps).
    """
    out = tmp_path_factory.mktemp("reference")
    run_to_end(child_command(digits_indexes, out, workers=0), out)
    return final_state(out)
