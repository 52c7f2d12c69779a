# SPDX-License-Identifier: MIT
"""The pretraining throughput benchmark: a tiny run of baseline (a) and the fast path, and the
budget machinery's share of a step."""

from __future__ import annotations

import json
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from solo_diversity.experiments.bench_pretrain import main
from solo_diversity.experiments.bench_pretrain_timing import (
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
