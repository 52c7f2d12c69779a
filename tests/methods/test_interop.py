# SPDX-License-Identifier: MIT
"""Checkpoint interoperability with solo-learn: one stem rule on both backends, and our ResNet
checkpoints load into the backbone that solo-learn's ``main_linear.py`` builds.

solo-learn's linear evaluation builds torchvision's ResNet, replaces ``fc`` by Identity, swaps in a
3x3 stride-1 ``conv1`` (padding 2) and drops the max-pool when the dataset is CIFAR, keeps the
state-dict keys containing ``backbone`` with the ``backbone.`` prefix removed and loads them with
``strict=False``. That construction is written out here from torchvision, independently of ours.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from solo_diversity.methods.upstream import solo_learn_version

STEMS = {"cifar100": 3, "cifar10": 3, "digits": 3, "imagenet100": 7, "tinyimagenet": 7}


def solo_learn_linear_backbone(dataset: str) -> nn.Module:
    """The ResNet-18 that solo-learn's main_linear.py builds for ``dataset``."""
    net = resnet18()
    net.fc = nn.Identity()  # type: ignore[assignment]
    if dataset in ("cifar10", "cifar100"):
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=2, bias=False)
        net.maxpool = nn.Identity()  # type: ignore[assignment]
    return net


def solo_learn_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """solo-learn's key rule, written as its loop does it (rename, then drop the original)."""
    out = {}
    for key, value in state.items():
        if "backbone" in key:
            out[key.replace("backbone.", "")] = value
    return out


@pytest.mark.parametrize("dataset", sorted(STEMS))
def test_one_stem_rule_on_every_backend(build_method, dataset: str) -> None:
    model = build_method("byol", ["backbone.name=resnet18", f"data.dataset={dataset}"])
    for net in (model.backbone, model.momentum_backbone):
        assert net.conv1.kernel_size == (STEMS[dataset],) * 2
        assert isinstance(net.maxpool, nn.Identity) == (STEMS[dataset] == 3)
    # the teacher starts as the student, stem included
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, model.momentum_backbone.state_dict()[key]), key


@pytest.mark.parametrize("dataset", ["cifar100", "imagenet100"])
def test_our_resnet18_checkpoint_loads_in_solo_learns_linear_eval_with_no_missing_key(
    build_method, dataset: str, tmp_path: Path
) -> None:
    model = build_method("simclr", ["backbone.name=resnet18", f"data.dataset={dataset}"])
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": model.state_dict()}, path)
    state = torch.load(path, map_location="cpu")["state_dict"]
    probe = solo_learn_linear_backbone(dataset)
    result = probe.load_state_dict(solo_learn_keys(state), strict=False)
    assert result.missing_keys == []
    assert set(result.unexpected_keys) == set()  # SimCLR: only backbone., projector., classifier.
    for key, value in probe.state_dict().items():
        assert torch.equal(value, model.backbone.state_dict()[key]), key


def test_doctor_reads_the_version_of_a_solo_learn_source_checkout(tmp_path, monkeypatch) -> None:
    """solo-learn is used from a source checkout on PYTHONPATH; its version is its setup.py's."""
    (tmp_path / "solo" / "methods").mkdir(parents=True)
    (tmp_path / "solo" / "__init__.py").write_text("")
    (tmp_path / "solo" / "methods" / "__init__.py").write_text("")
    (tmp_path / "setup.py").write_text('setup(\n    name="solo-learn",\n    version="1.0.6",\n)\n')
    for name in [m for m in sys.modules if m == "solo" or m.startswith("solo.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert solo_learn_version() == f"1.0.6 (source at {tmp_path})"


def test_doctor_says_not_installed_without_solo_learn(monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "solo" or m.startswith("solo.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not (Path(p) / "solo").is_dir()])
    assert solo_learn_version() == "not installed"
