# SPDX-License-Identifier: MIT
"""Probe side of checkpoint interoperability: solo-learn state dicts, stems, refusals, methods."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from solo_diversity.errors import UserError
from solo_diversity.evaluation.features import load_backbone, stem_of
from solo_diversity.evaluation.linear import run_linear
from solo_diversity.models import backbones
from solo_diversity.models.backbones import build_backbone
from tests.evaluation.conftest import solo_state, write_checkpoint
from tests.evaluation.probe_inputs import torchvision_resnet18


@pytest.mark.parametrize("small_stem", [False, True])
@pytest.mark.parametrize("fallback", [False, True, None])
def test_a_solo_learn_checkpoint_loads_with_zero_missing_keys(tmp_path, small_stem, fallback):
    torch.manual_seed(0)
    theirs = torchvision_resnet18(small_stem)
    path = write_checkpoint(tmp_path, solo_state(theirs), None)  # no args.json, as upstream
    ours = load_backbone(path, "resnet18", small_input_stem=fallback)
    assert stem_of({k: v for k, v in ours.state_dict().items()}) is small_stem
    expected = theirs.state_dict()
    assert set(ours.state_dict()) == set(expected)  # zero missing, zero extra backbone keys
    assert all(torch.equal(v, expected[k]) for k, v in ours.state_dict().items())
    assert isinstance(ours.maxpool, nn.Identity) is small_stem
    assert not ours.training


def test_without_conv1_the_fallback_rule_decides(tmp_path):
    net = build_backbone("small_cnn", width=4)
    path = write_checkpoint(tmp_path, solo_state(net), None)
    assert stem_of(net.state_dict()) is None
    loaded = load_backbone(path, "small_cnn", small_input_stem=True, kwargs={"width": 4})
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_a_checkpoint_without_any_backbone_weight_is_refused(tmp_path):
    net = build_backbone("small_cnn", width=4)
    path = write_checkpoint(tmp_path, solo_state(net), {"backbone": {"name": "small_cnn"}})
    with pytest.raises(
        UserError,
        match=r"no weights for backbone 'resnet18' \(0 of \d+ "
        r"parameters and buffers\); its backbone is 'small_cnn'",
    ):
        load_backbone(path, "resnet18", small_input_stem=True)


def test_a_shape_mismatch_is_one_line_not_a_traceback(tmp_path):
    path = write_checkpoint(
        tmp_path, solo_state(torchvision_resnet18(False)), {"backbone": {"name": "resnet18"}}
    )
    with pytest.raises(
        UserError,
        match=r"backbone 'resnet18'\) does not fit backbone "
        r"'resnet50': layer1.0.conv1.weight is",
    ):
        load_backbone(path, "resnet50")


def test_the_checkpoints_method_reaches_build_backbone(tmp_path, monkeypatch):
    seen = []

    def per_method(cifar=False, method=None, **kwargs):
        seen.append(method)
        return build_backbone("small_cnn", width=4)

    monkeypatch.setitem(backbones.BACKBONES, "per_method_cnn", per_method)
    monkeypatch.setattr(
        backbones, "METHOD_AWARE_BACKBONES", {*backbones.METHOD_AWARE_BACKBONES, "per_method_cnn"}
    )
    state = solo_state(build_backbone("small_cnn", width=4))
    path = write_checkpoint(tmp_path / "a", state, {"method": "mocov3"})
    load_backbone(path, "per_method_cnn")
    upstream = write_checkpoint(tmp_path / "b", state, {"pretrain_method": "byol"})
    load_backbone(upstream, "per_method_cnn")
    load_backbone(upstream, "per_method_cnn", method="dino")
    assert seen == ["mocov3", "byol", "dino"]


def test_a_runs_dali_gpu_setting_does_not_stop_a_cpu_probe(linear_cfg):
    # tiny_checkpoint's args.json says dali.device: gpu; the probe's own config decides.
    record = run_linear(linear_cfg(["max_epochs=1"])).record
    assert record["data_format"] == "h5" and record["probe_mode"] == "protocol"


def test_the_probe_checkpoint_has_solo_learns_keys(linear_cfg, tmp_path):
    result = run_linear(linear_cfg(["max_epochs=1", "checkpoint.enabled=true"]))
    assert result.checkpoint is not None and result.checkpoint.parent.parent.name == "linear"
    state = torch.load(result.checkpoint, weights_only=False)["state_dict"]
    assert {k.split(".")[0] for k in state} == {"backbone", "classifier"}
    assert state["classifier.weight"].shape == (10, 16)
    assert (result.checkpoint.parent / "args.json").exists()
    assert (result.checkpoint.parent / "result.json").exists()


def test_auto_resume_continues_an_unfinished_probe_only(linear_cfg):
    keys = [
        "max_epochs=1",
        "data.label_fraction=0.05",
        "checkpoint.enabled=true",
        "auto_resume.enabled=true",
    ]
    first = run_linear(linear_cfg(keys))
    assert first.checkpoint is not None
    (first.checkpoint.parent / "result.json").unlink()  # as if it had been interrupted
    second = run_linear(linear_cfg(keys))
    assert second.checkpoint is not None and second.checkpoint.parent == first.checkpoint.parent
    third = run_linear(linear_cfg(keys))  # the second one finished: a new probe
    assert third.checkpoint is not None and third.checkpoint.parent != first.checkpoint.parent


def test_another_probe_set_without_its_paths_is_one_line(linear_cfg):
    # the run's paths hold the digits: a "cifar100" probe on them would be silently wrong
    with pytest.raises(
        UserError,
        match=r"the probe set data.dataset=cifar100 is not the "
        r"pretraining set \(digits\); give its data.train_path and data.val_path",
    ):
        run_linear(linear_cfg(["data.dataset=cifar100"]))
