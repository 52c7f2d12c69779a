# SPDX-License-Identifier: MIT
"""A run killed twice and resumed keeps its whole history: CSV rows, TensorBoard, ledger counters.

The children are :mod:`tests.e2e.resume_runs`'s, logging every step to CSV and TensorBoard
and validating 4 times. Both kills land after a checkpoint, with steps already logged past it
(which the resumed process logs again): the resumed run's ``metrics.csv`` must hold exactly the
rows of an uninterrupted run, and ``ledger.json`` must count every step of the three processes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.e2e.resume_runs import STEPS, child_command, kill_at, run_to_end

# A kill with batch 7 in flight (checkpoint at 4, steps 5 and 6 logged), then one after step 18
# (checkpoint at 16; steps 17 and 18 logged, and the validation at step 14 between).
KILLS = ["mid-step:6", "end:18"]
# What a resume cannot carry over: its count, and the epoch means of the epochs it split (an
# epoch mean averages the batches of one process; Lightning keeps the sums in memory only).
DIFFERS = {"ledger/resumes"}


def _logged(digits_indexes: dict[str, Path], out: Path) -> list[str]:
    return [
        *child_command(digits_indexes, out, workers=0),
        f"data.val_path={digits_indexes['test']}",  # validation at steps 7, 14, 21 and 28
        "++loggers=[csv,tensorboard]",
        "+log_every_n_steps=1",
    ]


def _csv(out: Path) -> tuple[list[str], list[dict[str, str]]]:
    (path,) = (out / "trained_models" / "logs" / "csv").glob("*/metrics.csv")
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        return list(reader.fieldnames or []), list(reader)


def _scalars(out: Path) -> dict[str, list[tuple[int, float]]]:
    (folder,) = (out / "trained_models" / "logs" / "tensorboard").glob("*")
    events = EventAccumulator(str(folder))  # reads every event file of the run, in order
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
        if tag != "hp_metric"  # a placeholder each process writes once
    }


def _same_row(killed: dict[str, str], whole: dict[str, str]) -> bool:
    filled = {k for k, v in killed.items() if v} == {k for k, v in whole.items() if v}
    return filled and all(
        killed[k] == whole[k] for k in whole if k not in DIFFERS and not k.endswith("_epoch")
    )


def test_two_kills_keep_every_row_and_every_step(digits_indexes, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run_to_end(_logged(digits_indexes, whole), whole)
    cmd = _logged(digits_indexes, killed)
    for point in KILLS:
        kill_at(cmd, killed, point)
    run_to_end(cmd, killed)

    whole_keys, whole_rows = _csv(whole)
    keys, rows = _csv(killed)
    assert keys == whole_keys
    assert [r["step"] for r in rows] == [r["step"] for r in whole_rows]
    assert sum(bool(r["val_loss"]) for r in rows) == 4
    assert sum(bool(r["images_seen"]) for r in rows) == STEPS
    assert all(_same_row(a, b) for a, b in zip(rows, whole_rows, strict=True))
    (final,) = [r for r in rows if r["ledger/resumes"]]
    assert float(final["ledger/resumes"]) == len(KILLS)

    scalars, whole_scalars = _scalars(killed), _scalars(whole)
    assert scalars.keys() == whole_scalars.keys()
    for tag, values in whole_scalars.items():
        steps = [step for step, _ in values]
        assert [step for step, _ in scalars[tag]] == steps, tag  # purged, then logged again
        if tag not in DIFFERS and not tag.endswith("_epoch"):
            assert scalars[tag] == values, tag

    (ledger_file,) = (killed / "trained_models" / "simclr").glob("*/ledger.json")
    ledger = json.loads(ledger_file.read_text())
    assert ledger["images_per_step_rank0"] == {"32": STEPS}  # all three processes' steps
    assert ledger["optimizer_steps"] == STEPS and ledger["match"] and ledger["resumes"] == 2
