# SPDX-License-Identifier: MIT
"""GPU-minded performance options on the CPU: ``performance.compile`` and fused optimizer steps."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from solo_diversity.errors import UserError
from solo_diversity.methods.optim import LARS, OptimizerSettings, build_optimizer, wants_fused
from solo_diversity.run.pretrain import run_pretrain

# 3 steps of 32 on the demo's 4-wide small CNN: inductor compiles it (forward and backward) in
# seconds on the CPU, where a ResNet-18 takes most of a minute.
DEMO = [
    "backbone.name=small_cnn",
    "optimizer.batch_size=32",
    "budget.C=96",
    "+backbone.kwargs.width=4",
    "data.val_path=null",
]


class SeeCompiled(pl.Callback):
    """Record which of the trained modules run compiled (``nn.Module.compile`` was applied)."""

    def __init__(self) -> None:
        self.compiled: dict[str, bool] = {}

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for name in ("backbone", "projector", "classifier"):
            module = getattr(pl_module, name)
            self.compiled[name] = module._compiled_call_impl is not None


def _keys_and_ledger(compose_cfg, compiled: bool) -> tuple[list[str], dict]:
    seen = SeeCompiled()
    cfg = compose_cfg(overrides=[*DEMO, f"++performance.compile={compiled}"])
    result = run_pretrain(cfg, callbacks=[seen])
    stored = torch.load(result.checkpoint, map_location="cpu", weights_only=False)
    assert stored["solo_diversity"]["resolved"]["compile"] is compiled
    assert seen.compiled == {"backbone": compiled, "projector": compiled, "classifier": False}
    return sorted(stored["state_dict"]), result.ledger


def test_compiled_demo_keeps_an_exact_ledger_and_plain_checkpoint_keys(compose_cfg):
    compiled_keys, ledger = _keys_and_ledger(compose_cfg, compiled=True)
    assert ledger["match"] and ledger["images_seen"] == 96 and ledger["optimizer_steps"] == 3
    assert not [key for key in compiled_keys if "_orig_mod" in key]
    eager_keys, _ = _keys_and_ledger(compose_cfg, compiled=False)
    assert compiled_keys == eager_keys and any(k.startswith("projector.") for k in eager_keys)


def test_a_compile_value_that_is_not_a_boolean_is_one_line(compose_cfg):
    with pytest.raises(UserError, match=r"^performance.compile must be true or false, got 'yes'$"):
        run_pretrain(compose_cfg(overrides=[*DEMO, "++performance.compile=yes"]))


@pytest.mark.parametrize(
    ("name", "devices", "kwargs", "fused"),
    [
        ("adamw", {"cuda"}, {}, True),
        ("adam", {"cuda"}, {}, True),
        ("sgd", {"cuda"}, {"momentum": 0.9}, True),
        ("lars", {"cuda"}, {}, False),
        ("sgd", {"cpu"}, {}, False),
        ("adamw", {"cuda", "cpu"}, {}, False),
        ("adamw", {"cuda"}, {"foreach": True}, False),
    ],
)
def test_fused_steps_only_for_torch_optimizers_with_every_parameter_on_cuda(
    name, devices, kwargs, fused
):
    assert wants_fused(name, devices, kwargs) is fused


@pytest.mark.parametrize("name", ["sgd", "adamw", "lars"])
def test_cpu_optimizers_are_built_as_before(name):
    layer = torch.nn.Linear(3, 2)
    settings = OptimizerSettings(name=name, lr=0.1, classifier_lr=0.1, weight_decay=0.0)
    optimizer = build_optimizer([{"params": layer.parameters()}], settings)
    assert not optimizer.defaults.get("fused")
    assert isinstance(optimizer, LARS) is (name == "lars")
    assert len(optimizer.param_groups[0]["params"]) == 2
