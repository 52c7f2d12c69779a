# SPDX-License-Identifier: MIT
"""Tiny checkpoints in solo-learn's layout and linear configs composed as main_linear.py does."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from solo_diversity.models.backbones import build_backbone
from tests.conftest import CONFIG_DIR

QUIET = ["+enable_progress_bar=false", "+enable_model_summary=false"]


def write_checkpoint(
    folder: Path,
    state: dict[str, torch.Tensor],
    args: dict[str, Any] | None,
    name: str = "run-abc-ep=1.ckpt",
) -> Path:
    """``{folder}/{name}`` holding ``{"state_dict": state}``, with ``args.json`` beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    torch.save({"state_dict": state, "epoch": 1}, path)
    if args is not None:
        (folder / "args.json").write_text(json.dumps(args))
    return path


def solo_state(backbone: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A solo-learn method's state dict: ``backbone.*`` plus projector/classifier extras."""
    state = {f"backbone.{k}": v.clone() for k, v in backbone.state_dict().items()}
    state.update(
        {
            "projector.0.weight": torch.randn(16, 8),
            "classifier.weight": torch.randn(10, 8),
            "classifier.bias": torch.zeros(10),
            "momentum_backbone.conv1.weight": torch.randn(1),
        }
    )
    return state


@pytest.fixture
def tiny_checkpoint(tmp_path: Path, digits_indexes: dict[str, Path]) -> Path:
    """A small_cnn (width 4) digits checkpoint whose args.json says ``dali.device: gpu``."""
    torch.manual_seed(0)
    args = {
        "name": "simclr-digits",
        "method": "simclr",
        "seed": 5,
        "backbone": {"name": "small_cnn", "kwargs": {"width": 4}},
        "data": {
            "dataset": "digits",
            "train_path": str(digits_indexes["train"]),
            "val_path": str(digits_indexes["test"]),
            "format": "h5",
            "crop_size": 8,
            "fraction": -1,
            "num_workers": 0,
        },
        "dali": {"device": "gpu"},  # solo-learn writes this even for image-folder runs
        "budget_plan": {"C": 1000, "C_eff": 992, "N": 1438},
    }
    net = build_backbone("small_cnn", width=4)
    return write_checkpoint(tmp_path / "pretrain", solo_state(net), args)


@pytest.fixture
def linear_cfg(tiny_checkpoint: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose ``linear_div`` on the tiny checkpoint, results in ``tmp_path/results.jsonl``."""

    def make(overrides: Sequence[str] = (), checkpoint: Path | None = None) -> DictConfig:
        base = [
            f"pretrained_feature_extractor='{checkpoint or tiny_checkpoint}'",
            f"results={tmp_path / 'results.jsonl'}",
            f"checkpoint.dir={tmp_path / 'trained_models'}",
            "max_epochs=2",
            "data.num_workers=0",
            *QUIET,
        ]
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
            return compose(config_name="linear_div", overrides=[*base, *overrides])

    return make
