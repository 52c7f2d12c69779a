# SPDX-License-Identifier: MIT
"""The probe, kNN and cell configs resolve once into typed values, before any file is read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from solo_diversity.config.cell import read_cell
from solo_diversity.config.knn import resolve_knn
from solo_diversity.config.linear import resolve_linear
from solo_diversity.errors import UserError
from tests.conftest import CONFIG_DIR


def _compose(name: str, overrides: Sequence[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        return compose(config_name=name, overrides=list(overrides))


def _linear(tmp_path: Path, *overrides: str) -> DictConfig:
    ckpt = f"pretrained_feature_extractor='{tmp_path / 'none.ckpt'}'"
    return _compose("linear_div", [ckpt, "accelerator=cpu", *overrides])


def test_a_linear_config_is_read_before_its_checkpoint_exists(tmp_path):
    config = resolve_linear(_linear(tmp_path, "optimizer.lr=1", "++devices=2"))
    assert config.checkpoint_file == tmp_path / "none.ckpt"
    assert (config.lr, config.weight_decay, config.rates_set) == (1.0, None, False)
    assert config.settings.optimizer.lr == 2 * 256 / 256
    assert config.hardware.accelerator == "cpu" and config.trainer["max_epochs"] == 20
    assert config.record["optimizer"]["lr"] == 1 and config.record["probe"]["mode"] == "protocol"
    assert config.data == {"num_workers": 2, "label_fraction": 1.0, "train_views": 0}


def test_the_recipes_rates_fill_only_the_unset_ones(tmp_path):
    config = resolve_linear(_linear(tmp_path, "optimizer.lr=1"))
    filled = config.with_rates(0.3, 1e-5)
    assert (filled.lr, filled.weight_decay) == (1.0, 1e-5)
    assert filled.settings.optimizer.weight_decay == 1e-5 and filled.settings.optimizer.lr == 1.0
    assert filled.record["optimizer"]["lr"] == 1 and isinstance(
        filled.record["optimizer"]["lr"], int
    )
    assert filled.record["optimizer"]["weight_decay"] == 1e-5
    assert config.record["optimizer"]["weight_decay"] is None  # the resolved config is unchanged


def test_a_bad_probe_value_fails_before_the_checkpoint_is_looked_for(tmp_path):
    with pytest.raises(UserError, match=r"data.label_fraction=2.0 must be in \(0, 1\]"):
        resolve_linear(_linear(tmp_path, "data.label_fraction=2"))


def test_a_knn_config_finds_the_newest_checkpoint_and_checks_its_lists(tmp_path):
    (tmp_path / "a.ckpt").write_bytes(b"")
    cfg = _compose("knn_div", [f"pretrained_checkpoint_dir='{tmp_path}'", "data_format=h5"])
    config = resolve_knn(cfg)
    assert config.checkpoint == tmp_path / "a.ckpt" and config.data == {"format": "h5"}
    assert list(config.sweep.settings("backbone")) == [
        (20, "cosine", 0.07),
        (20, "euclidean", None),
    ]
    assert (config.hardware.devices, config.hardware.precision, config.dali_device) == (
        1,
        "32-true",
        "auto",
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no .ckpt file"):
        resolve_knn(_compose("knn_div", [f"pretrained_checkpoint_dir='{tmp_path / 'empty'}'"]))


def test_a_cells_batch_error_waits_for_its_plan(tmp_path):
    (tmp_path / "cell.yaml").write_text(
        OmegaConf.to_yaml(
            {
                "method": "simclr",
                "devices": 3,
                "data": {"dataset": "cifar100"},
                "backbone": {"name": "resnet18"},
                "optimizer": {"global_batch_size": 256},
                "budget": {"C": "1e6"},
            }
        )
    )
    cell = read_cell(tmp_path, "cell", ())
    assert (cell.method, cell.fraction, cell.recipe, cell.global_batch) == (
        "simclr",
        1.0,
        None,
        None,
    )
    assert cell.record["devices"] == 3
    with pytest.raises(UserError, match="does not split over 3 process"):
        cell.budget_plan(100, None)
