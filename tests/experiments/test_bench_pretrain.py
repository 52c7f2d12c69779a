# SPDX-License-Identifier: MIT
"""The pretraining throughput benchmark: a tiny run of baseline (a) and the fast path, the budget
machinery's share of a step, and the mini paper's preset held against its bare model."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from bench.model import autocast_dtype, bare_model
from bench.pretrain import BenchSettings, compose_cfg, main
from bench.pretrain_timing import (
    StepClock,
    machinery_components,
    machinery_share,
    transfer_ms,
    window_sums,
)

WINDOW = {
    "[Callback]BudgetLedger.on_train_batch_end": 0.004,
    "[Callback]BudgetLedger.on_train_batch_start": 0.001,
    "[Callback]VisitLedger.on_train_batch_start": 0.003,
    "[Callback]StepClock.on_train_batch_end": 0.5,  # the benchmark's own callbacks are not
    "[Callback]SamplerCost.on_train_end": 0.1,
    "[LightningDataModule]PretrainDataModule.state_dict": 0.002,
    "[LightningDataModule]PretrainDataModule.on_after_batch_transfer": 0.04,  # the data path
    "[_TrainingEpochLoop].train_dataloader_next": 3.0,  # loader wait: a diagnostic
    "[Strategy]SingleDeviceStrategy.training_step": 9.0,  # the model
}


def test_machinery_share_is_our_hooks_per_step_over_the_step_time():
    components = machinery_components(WINDOW, steps=10)
    assert components == pytest.approx(
        {"BudgetLedger": 0.5, "VisitLedger": 0.3, "DataModule:PretrainDataModule": 0.2}
    )
    assert list(components) == ["BudgetLedger", "VisitLedger", "DataModule:PretrainDataModule"]
    assert machinery_share(components, step_ms=100.0) == pytest.approx(0.01)
    assert transfer_ms(WINDOW, steps=10) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="step_ms"):
        machinery_share(components, step_ms=0.0)


def test_window_sums_take_only_what_was_recorded_after_the_snapshot():
    recorded = {"a": [1.0, 2.0, 3.0], "b": [5.0], "c": [0.5, 0.25]}
    assert window_sums({"a": 1, "b": 1}, recorded) == {"a": 5.0, "c": 0.75}


def test_step_clock_sums_the_profiled_actions_of_the_timed_steps_only():
    durations: defaultdict[str, list[float]] = defaultdict(list)
    trainer = SimpleNamespace(global_step=0, profiler=SimpleNamespace(recorded_durations=durations))
    module = SimpleNamespace(device=torch.device("cpu"))
    clock = StepClock(warmup=1, steps=2)
    for step in (1, 2, 3, 4):  # step 1 warms up, 2 and 3 are timed, 4 carries the save
        durations["[Callback]BudgetLedger.on_train_batch_end"].append(step / 1000)
        trainer.global_step = step
        clock.on_train_batch_end(trainer, module, None, None, step - 1)
    assert clock.window_seconds == pytest.approx(
        {"[Callback]BudgetLedger.on_train_batch_end": 0.005}
    )
    assert len(clock.step_ends) == 3 and clock.seconds > 0 and clock.median_step_ms >= 0


@pytest.mark.parametrize("flag", ["--steps", "--warmup", "--batch-size"])
def test_bad_step_counts_are_cli_errors(flag, capsys):
    with pytest.raises(SystemExit):
        main([flag, "0"])
    assert f"{flag} must be >= 1, got 0" in capsys.readouterr().err


def test_quick_run_writes_both_rows(tmp_path):
    out = tmp_path / "bench.json"
    tiny = "--quick --steps 2 --batch-size 8 --num-images 64 --rows a,fast --accelerator cpu"
    argv = [*tiny.split(), "--corpus", str(tmp_path / "corpus"), "--out", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    rows = {r["row"]: r for r in report["rows"]}
    assert list(rows) == ["a", "fast"]
    assert all(r["status"] == "ok" and r["images_per_s"] > 0 for r in rows.values()), rows
    assert rows["a"]["ratio_to_a"] == 1.0 and rows["a"]["machinery_ms"] == {}
    named = {"BudgetLedger", "VisitLedger", "SoloCheckpointer", "EpochSampler (order + keys)"}
    assert named <= set(rows["fast"]["machinery_ms"])
    assert rows["fast"]["machinery_share"] == pytest.approx(
        sum(rows["fast"]["machinery_ms"].values()) / rows["fast"]["ms_per_step"]
    )
    assert report["settings"]["batch_size"] == 8 and report["timed"] == "steps 2..3 of 4"


def test_mini_paper_preset_composes_the_mini_papers_model(tmp_path):
    settings = BenchSettings(preset="mini_paper")
    cfg = compose_cfg(settings, tmp_path / "index.h5", "bare", tmp_path)
    assert cfg.method == "simclr" and cfg.backbone.name == "small_cnn"
    assert cfg.data.crop_size == 28 and cfg.data.crop_min_scale == 0.2
    assert cfg.precision == "bf16-mixed" and cfg.data.augment_backend == "batch"
    assert cfg.budget.epoch_keys == "reference" and cfg.scheduler.warmup_epochs == 0
    assert cfg.optimizer.batch_size == 256 and cfg.data.num_workers == 2
    model, resolved = bare_model(cfg, num_images=1000)
    assert model.settings.channels_last and resolved.augmentations[0].crop_size == 28
    assert autocast_dtype(str(resolved.precision), "cpu") is torch.bfloat16
    cifar = compose_cfg(BenchSettings(), tmp_path / "index.h5", "fast", tmp_path)
    assert (cifar.backbone.name, cifar.data.crop_size) == ("resnet18", 32)
    assert cifar.data.augment_backend == "fast" and cifar.backbone.small_input_stem


def test_quick_mini_paper_run_holds_end_to_end_against_the_bare_model(tmp_path, capsys):
    out = tmp_path / "bench.json"
    tiny = "--preset mini_paper --quick --steps 2 --num-images 64 --workers 0 --accelerator cpu"
    argv = [*tiny.split(), "--corpus", str(tmp_path / "corpus"), "--out", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    rows = {r["row"]: r for r in report["rows"]}
    assert list(rows) == ["batch", "bare"], "the preset's rows"
    assert all(r["status"] == "ok" and r["images_per_s"] > 0 for r in rows.values()), rows
    assert report["preset"] == "mini_paper" and "small_cnn" in report["model"]
    assert report["settings"]["batch_size"] == 32 and report["bare_target"] == 0.7
    bare, batch = rows["bare"]["images_per_s"], rows["batch"]["images_per_s"]
    assert rows["bare"]["ratio_to_bare"] == 1.0
    assert rows["batch"]["ratio_to_bare"] == pytest.approx(batch / bare)
    assert rows["bare"]["machinery_ms"] == {} and rows["bare"]["ms_per_step"] > 0
    printed = capsys.readouterr().out
    share = f"{100 * batch / bare:.0f}%"
    assert re.search(
        rf"end-to-end \(batch\) reaches {share} of the bare model rate \(target 70%\)", printed
    )
    assert "x bare" in printed and "small_cnn" in printed
