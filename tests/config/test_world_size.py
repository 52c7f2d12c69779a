# SPDX-License-Identifier: MIT
"""The world size comes from Lightning's device resolution; a wrong G stops the run early."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from solo_diversity.budget.plan import plan_budget
from solo_diversity.budget.world import resolve_world
from solo_diversity.config.pretrain import attach_plan, resolve_pretrain_cfg
from solo_diversity.errors import UserError
from solo_diversity.methods.settings import count_devices, global_batch, method_settings
from solo_diversity.run.callbacks import GlobalBatchCheck, WorldSizeMismatch


@pytest.mark.parametrize(
    ("devices", "num_nodes", "strategy", "size"),
    [
        (1, 1, "auto", 1),
        ("auto", 1, "auto", 1),  # Lightning: auto is one CPU process
        (2, 1, "ddp", 2),
        ("2", 1, None, 2),
        ([0, 1], 1, "ddp", 2),  # solo-learn's GPU list, on the CPU: its length
        ("0,1,2", 1, "ddp", 3),
        ("auto", 2, "auto", 2),
        (2, 3, "ddp", 6),
    ],
)
def test_cpu_world_sizes_follow_lightning(devices, num_nodes, strategy, size):
    assert resolve_world("cpu", devices, num_nodes, strategy).size == size


def test_all_devices_on_the_cpu_is_one_line():
    with pytest.raises(UserError, match=r"^devices=-1 means every GPU; on the CPU give a process"):
        resolve_world("cpu", -1)


def test_lightning_rejections_become_one_line():
    with pytest.raises(UserError) as err:
        resolve_world("cpu", "two")
    assert str(err.value) == (
        "Lightning rejects accelerator=cpu devices='two' num_nodes=1 strategy=auto: "
        "`devices` selected with `CPUAccelerator` should be an int > 0."
    )


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine with 2 CUDA devices, as Lightning's CUDA accelerator counts them (no GPU here)."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.mark.parametrize(
    ("accelerator", "devices", "num_nodes", "size"),
    [
        ("gpu", -1, 1, 2),
        ("gpu", "auto", 1, 2),
        ("auto", "auto", 1, 2),
        ("gpu", -1, 2, 4),
        ("gpu", [1], 1, 1),
        ("gpu", "0,1", 1, 2),
    ],
)
def test_gpu_all_and_auto_count_every_gpu(two_gpus, accelerator, devices, num_nodes, size):
    assert resolve_world(accelerator, devices, num_nodes).size == size
    assert count_devices(devices, accelerator) == size // num_nodes


def test_the_plan_and_the_learning_rate_use_the_resolved_world(compose_cfg):
    cfg = resolve_pretrain_cfg(
        compose_cfg(overrides=["optimizer.batch_size=32", "+accumulate_grad_batches=2"])
    )
    cfg, plan = attach_plan(cfg, dataset_size=1438, subset_size=1438, num_classes=10, world_size=4)
    assert plan.global_batch == 32 * 4 * 2 == global_batch(cfg) and cfg.budget_plan.world_size == 4
    settings = method_settings(cfg)
    assert settings.optimizer.lr == pytest.approx(0.4 * 256 / 256)  # lr * G / 256


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(2, 1)
        self.steps = 0

    def training_step(self, batch, batch_idx):
        self.steps += 1
        return self.net(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_global_batch_other_than_the_plan_stops_before_the_first_step(tmp_path):
    plan = plan_budget(640, 100, 64)  # planned for 2 processes x 32, Lightning runs 1 x 32
    model = Tiny()
    loader = DataLoader(TensorDataset(torch.zeros(100, 2)), batch_size=32)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=10,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[GlobalBatchCheck(plan, 32)],
        default_root_dir=tmp_path,
    )
    with pytest.raises(WorldSizeMismatch) as err:
        trainer.fit(model, loader)
    assert str(err.value) == (
        "Lightning runs 1 processes x accumulate 1 x batch 32 = 32 images per step, but the "
        "budget plan has G=64; fix devices/num_nodes/accumulate_grad_batches"
    )
    assert model.steps == 0 and trainer.global_step == 0


def test_a_matching_global_batch_trains(tmp_path):
    model = Tiny()
    loader = DataLoader(TensorDataset(torch.zeros(100, 2)), batch_size=32)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=2,
        logger=False,
        accumulate_grad_batches=2,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
        callbacks=[GlobalBatchCheck(plan_budget(640, 100, 64), 32)],
    )
    trainer.fit(model, loader)
    assert trainer.global_step == 2 and model.steps == 4
