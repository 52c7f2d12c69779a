# SPDX-License-Identifier: MIT
"""Untrained baselines: ``main_pretrain.py ++baseline=KIND`` writes a run the probe reads as-is."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import OmegaConf

from solo_diversity.config.pretrain import attach_plan, resolve_pretrain_cfg
from solo_diversity.errors import UserError
from solo_diversity.evaluation.features import load_backbone
from solo_diversity.evaluation.linear import run_linear
from solo_diversity.experiments.runner import finished_checkpoint
from solo_diversity.experiments.status import pretrain_state
from solo_diversity.methods import get_method
from solo_diversity.models.backbones import RawPixels
from solo_diversity.run.pretrain import run_pretrain

TINY = ["+backbone.kwargs.width=4", "budget.C=256"]


def _baseline(compose_cfg, kind: str, seed: int = 3) -> Path:
    cfg = compose_cfg("simclr_div", [*TINY, f"++baseline={kind}", f"seed={seed}"])
    result = run_pretrain(cfg)
    assert result.checkpoint is not None
    return result.checkpoint


def test_random_init_is_the_backbone_a_run_with_that_seed_starts_from(compose_cfg):
    ckpt = _baseline(compose_cfg, "random_init", seed=3)
    loaded = load_backbone(ckpt, "small_cnn", kwargs={"width": 4})
    cfg = resolve_pretrain_cfg(compose_cfg("simclr_div", [*TINY, "seed=3"]))
    pl.seed_everything(3)
    cfg, _ = attach_plan(cfg, dataset_size=1438, subset_size=1438, num_classes=10, world_size=1)
    fresh = get_method("simclr")(cfg).backbone.state_dict()
    ours = loaded.state_dict()
    assert ours.keys() == fresh.keys()
    assert all(torch.equal(ours[k], fresh[k]) for k in ours)
    # another seed is another initialisation
    other = load_backbone(
        _baseline(compose_cfg, "random_init", seed=4), "small_cnn", kwargs={"width": 4}
    ).state_dict()
    assert not torch.equal(other["features.0.weight"], ours["features.0.weight"])


def test_a_baseline_run_is_finished_without_a_ledger_and_says_what_it_is(compose_cfg):
    ckpt = _baseline(compose_cfg, "raw_pixels")
    folder = ckpt.parent
    assert json.loads((folder / "baseline.json").read_text()) == {
        "baseline": "raw_pixels",
        "steps": 0,
    }
    assert not (folder / "ledger.json").exists()
    assert (folder / f"{ckpt.name}.sha256").read_text().split()[0]
    args = json.loads((folder / "args.json").read_text())
    assert args["baseline"] == "raw_pixels"
    assert args["backbone"]["name"] == "raw_pixels" and args["backbone"]["kwargs"]["img_size"] == 8
    assert pretrain_state(folder.parent.parent) == "probe"
    assert finished_checkpoint(folder.parent.parent) == ckpt


def test_raw_pixels_are_the_flattened_normalised_crop():
    net = RawPixels(img_size=8)
    x = torch.randn(5, 3, 8, 8)
    assert net.num_features == 192
    assert torch.equal(net(x), x.reshape(5, -1))


def test_the_probe_reads_a_raw_pixel_baseline_and_files_it_as_untrained(compose_cfg, linear_cfg):
    ckpt = _baseline(compose_cfg, "raw_pixels")
    cfg = linear_cfg(
        ["probe.mode=features", "max_epochs=3", "optimizer.lr=0.1", "optimizer.weight_decay=0"],
        checkpoint=ckpt,
    )
    record = run_linear(cfg).record
    assert record["baseline"] == "raw_pixels" and record["backbone"] == "raw_pixels"
    assert record["N"] is None and record["C"] is None and record["D"] is None  # it saw nothing
    assert record["acc1"] > 50  # digits are linearly separable in pixel space: it really probed


def test_an_unknown_baseline_is_one_line(compose_cfg):
    cfg = compose_cfg("simclr_div", [*TINY, "++baseline=pixels"])
    with pytest.raises(
        UserError,
        match=r"^baseline='pixels' is not one of random_init, "
        r"raw_pixels \(or null\)$",
    ):
        run_pretrain(cfg)
    assert OmegaConf.select(cfg, "baseline") == "pixels"
