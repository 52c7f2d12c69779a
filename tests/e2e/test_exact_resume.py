# SPDX-License-Identifier: MIT
"""Exact resume: SIGKILL pretraining runs at chosen steps, resume, compare bit for bit.

The children are :mod:`tests.e2e.resume_runs`'s: each pauses at the step the parent chose, so
that the parent's SIGKILL lands there and nowhere else. The run's own per-image visit counts
(``visits.npz`` beside the ledger) are compared with the uninterrupted ``reference`` run's
(``tests/e2e/conftest.py``). The kill points come from a seeded RNG.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from tests.e2e.resume_runs import (
    EVERY,
    STEPS,
    child_command,
    final_state,
    kill_at,
    kill_points,
    max_abs_diff,
    run_to_end,
)


def test_sigkill_at_four_points_then_resume_is_bit_identical(digits_indexes, tmp_path, reference):
    ref_state, ref_ledger, ref_visits = reference
    out = tmp_path / "killed"
    cmd = child_command(digits_indexes, out, workers=0)
    points = kill_points(seed=10)
    for point in points:
        kill_at(cmd, out, point)
    run_to_end(cmd, out)
    state, ledger, visits = final_state(out)
    (run_dir,) = (out / "trained_models" / "simclr").glob("*")
    assert sorted(p.name for p in run_dir.glob("*.ckpt*")) == [
        ledger["name"],
        ledger["name"] + ".sha256",
    ]  # each step checkpoint was replaced
    assert max_abs_diff(state, ref_state) == 0.0
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state)
    assert np.array_equal(visits, ref_visits)
    assert ledger["images_seen"] == ref_ledger["images_seen"] == 32 * STEPS
    assert ledger["epoch"] == ref_ledger["epoch"] and "-step=" not in ledger["name"]
    # the kill in the start-up came before that run saved anything: 3 resumes left a trace
    assert ledger["match"] and ledger["resumes"] == len(points) - 1
    # 960 visits over 388 images: 2.47 epochs of 12 * 32 = 384 images each (4 dropped per epoch).
    assert visits.sum() == 960 and set(np.unique(visits)) <= {0, 1, 2, 3}


def test_two_workers_resume_equals_the_single_process_run(digits_indexes, tmp_path, reference):
    ref_state, _, ref_visits = reference
    out = tmp_path / "workers"
    cmd = child_command(digits_indexes, out, workers=2)
    step = random.Random(11).choice([s for s in range(13, STEPS) if s % EVERY])
    kill_at(cmd, out, f"end:{step}")
    run_to_end(cmd, out)
    state, ledger, visits = final_state(out)
    assert max_abs_diff(state, ref_state) == 0.0
    assert np.array_equal(visits, ref_visits) and ledger["match"]


def test_truncated_newest_checkpoint_is_skipped_with_one_line(digits_indexes, tmp_path, reference):
    ref_state, _, ref_visits = reference
    out = tmp_path / "truncated"
    cmd = [*child_command(digits_indexes, out, workers=0), "checkpoint.keep_prev=true"]
    kill_at(cmd, out, "end:10")  # checkpoints at steps 4 and 8 are kept
    (run_dir,) = (out / "trained_models" / "simclr").glob("*")
    newest = next(run_dir.glob("*-step=8.ckpt"))
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a full disk's leftover
    actual, recorded = _sha(newest), (run_dir / (newest.name + ".sha256")).read_text()
    stderr = run_to_end(cmd, out)  # the resumed run saves step 8 again, intact
    skipped = [line for line in stderr.splitlines() if line.startswith("auto-resume: skipping")]
    assert skipped == [
        f"auto-resume: skipping {newest}: its sha256 {actual[:12]} differs from "
        f"{newest.name}.sha256 ({recorded[:12]}): the file is truncated or corrupt"
    ]
    state, ledger, visits = final_state(out)
    assert max_abs_diff(state, ref_state) == 0.0 and np.array_equal(visits, ref_visits)
    assert ledger["resumes"] == 1


def _sha(path: Path) -> str:
    from solo_diversity.run.checkpoint_files import file_sha256

    return file_sha256(path)
