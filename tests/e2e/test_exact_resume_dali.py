# SPDX-License-Identifier: MIT
"""Exact resume on ``data.format=dali`` (``dali.device=cpu``): kill, resume, compare bit for bit.

The children, kill points and comparisons are :mod:`tests.e2e.resume_runs`'s; only the data
path differs. DALI's views are drawn by the feed from each sample's (seed, pass, position), so a
resumed epoch gets the uninterrupted run's crops and the final backbone must be identical to an
uninterrupted DALI run's (which differs from the torchvision path's: other pixel kernels).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import zygote
from tests.e2e.resume_runs import (
    STEPS,
    check_saved,
    child_command,
    final_state,
    kill_at,
    kill_points,
    max_abs_diff,
    one_line,
    run_to_end,
    signal_points,
)

TAG = "SOLO_DIV_TEST_RUN"  # an environment variable that a run and all its children carry

DALI = ["data.format=dali", "dali.device=cpu"]


def dali_command(
    digits_indexes: dict[str, Path], out: Path, cache: Path, workers: int = 0
) -> list[str]:
    """The exact-resume child on the DALI path, its screening cache in ``cache``.

    ``workers`` feed processes run DALI's per-sample source (0: in the training process).
    """
    cmd = child_command(digits_indexes, out, workers=workers)
    return [*cmd, *DALI, f"++data.index_cache={cache}"]


@pytest.fixture(scope="module")
def screen_dir(tmp_path_factory) -> Path:
    """One screening cache for the module's runs (verdicts do not change what a run sees)."""
    return tmp_path_factory.mktemp("screen")


@pytest.fixture(scope="module")
def dali_reference(digits_indexes, tmp_path_factory, screen_dir):
    """The uninterrupted DALI run that every resumed DALI run must equal."""
    out = tmp_path_factory.mktemp("dali-reference")
    run_to_end(dali_command(digits_indexes, out, screen_dir), out)
    return final_state(out)


def test_dali_sigkill_at_three_points_then_resume_is_bit_identical(
    digits_indexes, tmp_path, screen_dir, dali_reference
):
    ref_state, ref_ledger, ref_visits = dali_reference
    out = tmp_path / "killed"
    cmd = dali_command(digits_indexes, out, screen_dir)
    # between two checkpoints (epoch 0), the resume's start-up, mid-step in epoch 1
    points = kill_points(seed=20)[:3]
    assert [p.split(":")[0] for p in points] == ["end", "start", "mid-step"]
    for point in points:
        kill_at(cmd, out, point)
    run_to_end(cmd, out)
    state, ledger, visits = final_state(out)
    assert max_abs_diff(state, ref_state) == 0.0
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state)
    assert np.array_equal(visits, ref_visits) and visits.sum() == 32 * STEPS
    assert ledger["images_seen"] == ref_ledger["images_seen"] == 32 * STEPS
    assert ledger["epoch"] == ref_ledger["epoch"] and ledger["match"]
    assert ledger["resumes"] == len(points) - 1  # the start-up kill saved nothing


def test_dali_ctrl_c_between_checkpoints_and_sigterm_mid_step_then_resume_is_bit_identical(
    digits_indexes, tmp_path, screen_dir, dali_reference
):
    ref_state, _, ref_visits = dali_reference
    out = tmp_path / "signalled"
    cmd = dali_command(digits_indexes, out, screen_dir)
    between, mid = signal_points(seed=21)  # mid is in epoch 1: DALI restarts part-way through it
    stopped = kill_at(cmd, out, f"end:{between}", sig=signal.SIGINT)
    assert stopped.returncode == 128 + signal.SIGINT
    check_saved(one_line(stopped), between, "SIGINT (Ctrl-C)")
    stopped = kill_at(cmd, out, f"mid-step:{mid}", sig=signal.SIGTERM)
    assert stopped.returncode == 128 + signal.SIGTERM
    check_saved(one_line(stopped), mid + 1, "SIGTERM")  # the batch in flight is trained on
    run_to_end(cmd, out)
    state, ledger, visits = final_state(out)
    assert max_abs_diff(state, ref_state) == 0.0 and np.array_equal(visits, ref_visits)
    assert ledger["match"] and ledger["resumes"] == 2


def _tagged(tag: str) -> dict[int, str]:
    """Live processes (pid -> command line) whose environment has ``TAG=tag``: a run and its
    children, reparented or not (a zombie's environment reads empty)."""
    found = {}
    needle = f"{TAG}={tag}".encode()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and needle in (proc / "environ").read_bytes().split(b"\0"):
                found[int(proc.name)] = (
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                )
        except OSError:
            continue  # ended meanwhile, or not ours
    return found


def test_dali_feed_processes_die_with_a_sigkilled_run_and_ignore_a_group_sigterm(
    digits_indexes, tmp_path, screen_dir, dali_reference
):
    """A feed process outlived a SIGKILLed run by 60-90 s (and kept the resource tracker up);
    one killed by a SIGTERM to the process group ended the run with a traceback, unsaved."""
    ref_state, _, ref_visits = dali_reference
    out = tmp_path / "feeds"
    cmd = dali_command(digits_indexes, out, screen_dir, workers=1)
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    seen: dict[int, str] = {}
    survivors: dict[int, str] = {}

    def kill_the_run_alone() -> None:
        seen.update(_tagged(tag))
        (run,) = [pid for pid, line in seen.items() if "tests.e2e.resume_runs" in line]
        os.kill(run, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while (left := _tagged(tag)) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors.update(left)

    # A fresh interpreter: the run is found by its command line and environment in /proc.
    fresh = {TAG: tag, zygote.FRESH_ENV: "1"}
    killed = kill_at(cmd, out, "end:5", sig=None, env=fresh, on_pause=kill_the_run_alone)
    assert killed.returncode == -signal.SIGKILL
    assert sum("multiprocessing.spawn" in line for line in seen.values()) == 1  # the feed
    assert any("resource_tracker" in line for line in seen.values())
    assert survivors == {}

    mid = signal_points(seed=22)[1]  # resumed from step 4's checkpoint
    stopped = kill_at(cmd, out, f"mid-step:{mid}", sig=signal.SIGTERM, group=True)
    assert stopped.returncode == 128 + signal.SIGTERM
    check_saved(one_line(stopped), mid + 1, "SIGTERM")
    run_to_end(cmd, out)
    state, ledger, visits = final_state(out)
    assert max_abs_diff(state, ref_state) == 0.0 and np.array_equal(visits, ref_visits)
    assert ledger["match"] and ledger["resumes"] == 2
