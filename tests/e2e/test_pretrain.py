# SPDX-License-Identifier: MIT
"""End-to-end budgeted pretraining on the embedded digits: ledger, checkpoints, resume, probe."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from solo_diversity.evaluation.linear import run_linear
from solo_diversity.index import open_index
from solo_diversity.run.checkpoint_files import verify
from solo_diversity.run.pretrain import run_pretrain
from tests.conftest import CONFIG_DIR

SMALL = ["optimizer.batch_size=32", "budget.C=1000", "+backbone.kwargs.width=8"]
NO_VAL = [*SMALL, "data.val_path=null"]


@pytest.mark.parametrize("fraction", [0.1, 0.5, 1.0])
def test_ledger_equals_the_effective_budget(compose_cfg, fraction):
    result = run_pretrain(compose_cfg(overrides=[*NO_VAL, f"data.fraction={fraction}"]))
    plan, ledger = result.plan, result.ledger
    assert (
        plan.N == int(fraction * 1438 + 0.5)
        and plan.N_ref == 1438
        and plan.steps == 1000 // 32 == 31
    )
    assert ledger["images_seen"] == plan.C_eff == 992 and ledger["optimizer_steps"] == 31
    assert ledger["images_per_step_rank0"] == {"32": 31} and ledger["match"]
    assert plan.epochs != int(plan.epochs)  # E = 1000 / N is not whole: the run stops mid-epoch


def test_checkpoint_layout_args_and_ledger_files(compose_cfg, tmp_path):
    result = run_pretrain(compose_cfg(overrides=NO_VAL))
    ckpt = result.checkpoint
    version = ckpt.parent.name
    assert ckpt.parent.parent == tmp_path / "trained_models" / "simclr"
    assert ckpt.name == f"simclr-digits-{version}-ep={ckpt.stem.split('=')[-1]}.ckpt"
    args = json.loads((ckpt.parent / "args.json").read_text())
    assert args["method"] == "simclr" and args["budget_plan"]["C_eff"] == 992
    assert json.loads((ckpt.parent / "ledger.json").read_text())["images_seen"] == 992
    stored = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert stored["budget_ledger"]["images_seen"] == 992
    assert (
        stored["solo_diversity"]["resolved"]["scheduler"]["warmup_steps"] == 31
    )  # 10 of 7 ref. epochs: all
    assert any(k.startswith("backbone.") for k in stored["state_dict"])


class StopAt(pl.Callback):
    """Interrupt training as Ctrl-C would, after a given optimizer step."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("data_format", ["h5", "dali"])
def test_interrupted_run_resumes_and_the_ledger_continues(compose_cfg, tmp_path, data_format):
    cfg = compose_cfg(overrides=[*NO_VAL, "auto_resume.enabled=true", f"data.format={data_format}"])
    with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into exit code 1 after saving
        run_pretrain(cfg, callbacks=[StopAt(12)])
    (saved,) = (tmp_path / "trained_models" / "simclr").glob("*/*.ckpt")
    visits = saved.parent / "visits.npz"
    assert saved.name.endswith("-ep=0-step=12.ckpt") and verify(saved) is None  # sha256 beside
    assert not (saved.parent / "ledger.json").exists()
    stored = torch.load(saved, weights_only=False)
    assert stored["budget_ledger"]["images_seen"] == 12 * 32
    (position,) = stored["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert (position["position"]["epoch"], position["position"]["batches"]) == (0, 12)
    second = run_pretrain(cfg)  # auto_resume finds the run
    assert second.checkpoint.parent == saved.parent
    assert second.ledger["images_seen"] == 992 and second.ledger["resumes"] == 1
    assert second.ledger["images_per_step_rank0"] == {"32": 31}  # both processes' steps
    # 992 of the 1,438 images in one epoch: the resumed run went on with batch 13 of the same
    # permutation, so no image was seen twice (a replayed epoch would show 384 images twice).
    counts = np.load(visits)["counts"]
    assert counts.sum() == 992 and counts.max() == 1


def test_probe_loads_the_checkpoint_and_appends_a_result_line(
    compose_cfg, tmp_path, digits_indexes
):
    result = run_pretrain(compose_cfg(overrides=SMALL))
    results = tmp_path / "results.jsonl"
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        probe_cfg = compose(
            config_name="linear_div",
            overrides=[
                f"pretrained_feature_extractor='{result.checkpoint}'",
                f"results={results}",
                "data.label_fraction=0.1",
                "max_epochs=5",
            ],
        )
    for _ in range(2):
        run_linear(probe_cfg)
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["accuracy"] == lines[1]["accuracy"] > 10.0  # above chance
    train_labels = open_index(digits_indexes["train"]).labels()
    per_class = np.bincount(train_labels)
    assert lines[0]["n_labelled"] == sum(int(0.1 * n + 0.5) for n in per_class)
    assert lines[0]["n_test"] == 359
    assert {k: lines[0][k] for k in ("method", "dataset", "C", "N", "fraction", "backbone")} == {
        "method": "simclr",
        "dataset": "digits",
        "C": 1000,
        "N": 1438,
        "fraction": -1,
        "backbone": "small_cnn",
    }


def test_no_labels_on_a_labelled_index_trains_without_the_labels(compose_cfg):
    """``data.no_labels``: the stored labels never reach the online classifier (solo-learn's -1)."""

    class ClassLoss(pl.Callback):
        def __init__(self) -> None:
            self.losses: list[float] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.losses.append(float(trainer.callback_metrics["train_class_loss"]))

    seen = ClassLoss()
    result = run_pretrain(
        compose_cfg(overrides=[*NO_VAL, "budget.C=96", "++data.no_labels=true"]), callbacks=[seen]
    )
    assert result.ledger["optimizer_steps"] == 3 and result.ledger["match"]
    assert seen.losses == [0.0, 0.0, 0.0]
