# SPDX-License-Identifier: MIT
"""Suite-wide fixtures: the embedded digits indexes and hydra composition of the shipped configs."""

from __future__ import annotations

import os

# pytest runs two workers on the two cores; each, and every child process it starts (they inherit
# the variable), keeps torch to one thread. Two threads per worker oversubscribe the cores and
# OpenMP's waiting threads then spin: a 30-step test run took 30 s of CPU instead of 9.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from collections.abc import Callable, Sequence  # noqa: E402 - after the thread count is set
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from solo_diversity.index import build_index  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "yaml_configs"


@pytest.fixture(scope="session")
def digits_indexes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The digits train/test indexes, built once per session."""
    root = tmp_path_factory.mktemp("digits")
    return {
        split: build_index("digits", root / f"{split}.h5", split=split)
        for split in ("train", "test")
    }


# Test runs last a few dozen steps, shorter than the 10 warmup epochs of a subset: their warmup is
# clamped to the run, as they are about other things (the refusal has its own tests).
TINY_RUN = ["++budget.allow_late_switches=true"]


@pytest.fixture
def compose_cfg(digits_indexes: dict[str, Path], tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose a shipped config as ``main_pretrain.py`` would, pointed at the session's digits."""

    def make(name: str = "simclr_div", overrides: Sequence[str] = ()) -> DictConfig:
        base = [
            f"data.train_path={digits_indexes['train']}",
            f"data.val_path={digits_indexes['test']}",
            f"checkpoint.dir={tmp_path / 'trained_models'}",
            "data.num_workers=0",
            *TINY_RUN,
        ]
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
            return compose(config_name=name, overrides=[*base, *overrides])

    return make
