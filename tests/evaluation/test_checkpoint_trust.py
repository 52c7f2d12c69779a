# SPDX-License-Identifier: MIT
"""The probe and kNN trust a checkpoint only as far as it proves: readable, unchanged since its
checksum was written, and pretrained with the method the command names.
"""

from __future__ import annotations

import pytest
import torch

from solo_diversity.errors import UserError
from solo_diversity.evaluation.features import probe_method, read_run_args
from solo_diversity.evaluation.knn_run import run_knn
from solo_diversity.evaluation.linear import run_linear
from solo_diversity.models.backbones import build_backbone
from solo_diversity.run import checkpoint_files as files
from tests.evaluation.conftest import solo_state, write_checkpoint
from tests.evaluation.probe_inputs import knn_cfg

MISMATCH = (
    r"^checkpoint {path} does not match its checksum: its sha256 [0-9a-f]{{12}} differs "
    r"from {name}\.sha256 \([0-9a-f]{{12}}\): the file is truncated or corrupt; copy it "
    r"again from the run$"
)


def test_the_probe_on_a_file_that_is_no_checkpoint_is_one_line(linear_cfg, tmp_path):
    # main_linear.py prints a UserError as one "error:" line and exits 2 (tests/config)
    junk = tmp_path / "notes.ckpt"  # no args.json beside it
    junk.write_text("not a checkpoint\n")
    with pytest.raises(UserError) as err:
        run_linear(linear_cfg(checkpoint=junk))
    assert str(err.value) == (
        f"checkpoint {junk} cannot be read (UnpicklingError: invalid load key, 'n'.); give a "
        ".ckpt saved by main_pretrain.py or solo-learn"
    )


def test_main_knn_on_a_file_that_is_no_checkpoint_is_one_line(tmp_path):
    junk = tmp_path / "notes.ckpt"
    junk.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(
        UserError,
        match=rf"^checkpoint {junk} cannot be read \(\w+: .*\); give a "
        r"\.ckpt saved by main_pretrain\.py or solo-learn$",
    ):
        run_knn(knn_cfg([f"pretrained_checkpoint_dir='{junk}'"]))


def test_pretrain_method_must_agree_with_the_checkpoints_own(linear_cfg, tiny_checkpoint):
    # tiny_checkpoint's args.json says simclr: the record would file it under byol
    with pytest.raises(
        UserError,
        match=rf"^pretrain_method=byol but checkpoint {tiny_checkpoint} "
        r"was pretrained with simclr; set pretrain_method=simclr "
        r"or leave it unset$",
    ):
        run_linear(linear_cfg(["pretrain_method=byol"]))


def test_pretrain_method_is_checked_against_the_config_stored_in_the_checkpoint(tmp_path):
    path = tmp_path / "run.ckpt"  # no args.json: the config saved inside the checkpoint decides
    torch.save({"state_dict": {}, "solo_diversity": {"cfg": {"method": "dino"}}}, path)
    run = read_run_args(path)
    assert probe_method("dino", run, path) == "dino"
    with pytest.raises(
        UserError, match="^pretrain_method=swav but checkpoint .* was pretrained with dino;"
    ):
        probe_method("swav", run, path)


def test_solo_learns_two_names_of_barlow_twins_agree(tmp_path):
    # scripts/linear/imagenet/barlow.yaml says "barlow", its pretraining runs "barlow_twins"
    run = {"method": "barlow_twins"}
    assert probe_method("barlow", run, tmp_path / "x.ckpt") == "barlow_twins"
    assert probe_method("byol", {}, tmp_path / "x.ckpt") == "byol"  # the checkpoint names none
    assert probe_method("barlow", {}, tmp_path / "x.ckpt") == "barlow_twins"


def test_an_args_json_that_is_not_json_is_one_line(linear_cfg, tiny_checkpoint):
    args = tiny_checkpoint.parent / "args.json"
    args.write_text('{"method": "simclr", ')  # cut off mid-write
    with pytest.raises(
        UserError,
        match=rf"^{args} \(beside checkpoint {tiny_checkpoint.name}\) "
        r"is not a JSON object; restore it from the run$",
    ):
        run_linear(linear_cfg())


def _tampered(tiny_checkpoint, tmp_path):
    """A copy of tiny_checkpoint published with its sha256, then overwritten: backbone zeroed."""
    state = solo_state(build_backbone("small_cnn", width=4))
    args = (tiny_checkpoint.parent / "args.json").read_text()
    folder = tmp_path / "published"
    tmp = write_checkpoint(folder, state, None, name="run-ep=1.ckpt.tmp")
    (folder / "args.json").write_text(args)
    path = folder / "run-ep=1.ckpt"
    files.publish(tmp, path)
    zeroed = {k: torch.zeros_like(v) if k.startswith("backbone.") else v for k, v in state.items()}
    torch.save({"state_dict": zeroed, "epoch": 1}, path)
    return path


def test_the_probe_refuses_a_checkpoint_that_no_longer_matches_its_checksum(
    linear_cfg, tiny_checkpoint, tmp_path
):
    path = _tampered(tiny_checkpoint, tmp_path)
    with pytest.raises(UserError, match=MISMATCH.format(path=path, name=path.name)):
        run_linear(linear_cfg(checkpoint=path))


def test_knn_refuses_a_checkpoint_that_no_longer_matches_its_checksum(tiny_checkpoint, tmp_path):
    path = _tampered(tiny_checkpoint, tmp_path)
    with pytest.raises(UserError, match=MISMATCH.format(path=path, name=path.name)):
        run_knn(knn_cfg([f"pretrained_checkpoint_dir='{path.parent}'"]))
