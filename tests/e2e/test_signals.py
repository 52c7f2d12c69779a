# SPDX-License-Identifier: MIT
"""Ctrl-C, SIGTERM and SLURM's requeue signal: saved at a step boundary, one line, exact resume.

The children and their pause points are those of :mod:`tests.e2e.resume_runs`; here the
parent sends SIGINT, SIGTERM or SIGUSR1 at the pause instead of SIGKILL. A stopped run must exit
with 128 + the signal number and exactly one line on stderr naming the checkpoint, which holds
exactly the trained steps (ledger and visit counts included); the resumed run must end
bit-identical to the uninterrupted reference with equal per-image visit counts.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from solo_diversity.run.checkpoint_files import verify
from solo_diversity.run.interrupt import hydra_quoted, requeue_slurm_job, resume_hint
from tests.conftest import REPO
from tests.e2e.resume_runs import (
    STEPS,
    check_saved,
    child_command,
    child_env,
    final_state,
    kill_at,
    max_abs_diff,
    one_line,
    run_to_end,
    signal_points,
)


@pytest.mark.parametrize(
    ("first", "second"),
    [(signal.SIGINT, signal.SIGTERM), (signal.SIGTERM, signal.SIGINT)],
    ids=["int-then-term", "term-then-int"],
)
def test_signal_between_checkpoints_and_mid_step_then_resume_is_bit_identical(
    digits_indexes,
    tmp_path,
    reference,
    first,
    second,
):
    ref_state, ref_ledger, ref_visits = reference
    out = tmp_path / "signalled"
    cmd = child_command(digits_indexes, out, workers=0)
    between, mid = signal_points(seed=first)
    labels = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}

    stopped = kill_at(cmd, out, f"end:{between}", sig=first)  # after step `between`
    assert stopped.returncode == 128 + first
    match = one_line(stopped)
    path = check_saved(match, between, labels[first])
    assert match["rest"] == f"resume with {resume_hint(path)}"

    stopped = kill_at(cmd, out, f"mid-step:{mid}", sig=second)  # batch mid + 1 in flight
    assert stopped.returncode == 128 + second
    check_saved(one_line(stopped), mid + 1, labels[second])

    run_to_end(cmd, out)
    state, ledger, visits = final_state(out)
    assert max_abs_diff(state, ref_state) == 0.0
    assert np.array_equal(visits, ref_visits)
    assert ledger["match"] and ledger["resumes"] == 2
    assert ledger["images_seen"] == ref_ledger["images_seen"] == 32 * STEPS
    assert ledger["optimizer_steps"] == STEPS
    assert not list(out.rglob("*.tmp"))


def _quoted_dir(cmd: list[str]) -> list[str]:
    """``cmd`` with its ``checkpoint.dir`` quoted for hydra (the folder's name holds ``=``)."""
    key = "checkpoint.dir="
    return [key + hydra_quoted(a.removeprefix(key)) if a.startswith(key) else a for a in cmd]


def test_sigterm_to_the_process_group_saves_and_the_pasted_hint_resumes_exactly(
    digits_indexes,
    tmp_path,
    reference,
):
    """What ``timeout``, ``kill -TERM -PGID`` and SLURM send: the run and its two loader workers
    at once. The printed hint then goes through a shell, under a folder named with ``=`` and a
    space."""
    ref_state, _, ref_visits = reference
    out = tmp_path / "pre=empted run"
    cmd = _quoted_dir(child_command(digits_indexes, out, workers=2))
    mid = signal_points(seed=23)[1]
    stopped = kill_at(cmd, out, f"mid-step:{mid}", sig=signal.SIGTERM, group=True)
    assert stopped.returncode == 128 + signal.SIGTERM
    match = one_line(stopped)
    path = check_saved(match, mid + 1, "SIGTERM")
    assert match["rest"] == f"resume with {resume_hint(path)}" and "=empted run/" in str(path)

    pasted = match["rest"].removeprefix("resume with auto_resume.enabled=true or ")
    without_auto = shlex.join(a for a in cmd if a != "auto_resume.enabled=true")
    resumed = subprocess.run(
        ["bash", "-c", f"{without_auto} {pasted}"],
        cwd=REPO,
        env=child_env(out, None),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state, ledger, visits = final_state(out)
    assert max_abs_diff(state, ref_state) == 0.0 and np.array_equal(visits, ref_visits)
    assert ledger["match"] and ledger["resumes"] == 1


def _slurm_env() -> dict[str, str]:
    """What srun sets for one task, with a PATH that has no scontrol (as on this machine)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    assert shutil.which("scontrol", path=path) is None
    return {
        "PATH": path,
        "SLURM_NTASKS": "1",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_JOB_NAME": "solo-div-test",
        "SLURM_JOB_ID": "4242",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
    }


def test_requeue_without_scontrol_names_the_job():
    requeued, phrase = requeue_slurm_job({"SLURM_JOB_ID": "4242", "PATH": "/nonexistent"})
    os_path = os.environ.get("PATH", "")
    assert shutil.which("scontrol", path=os_path) is None  # the test relies on its absence
    assert (requeued, phrase) == (False, "could not requeue SLURM job 4242 (scontrol not found)")
    array = {"SLURM_ARRAY_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "80"}
    assert requeue_slurm_job(array)[1] == "could not requeue SLURM job 77_3 (scontrol not found)"
    assert requeue_slurm_job({})[1] == ("could not requeue the SLURM job (SLURM_JOB_ID is not set)")


def test_slurm_requeue_signal_saves_and_the_requeued_job_resumes_exactly(
    digits_indexes,
    tmp_path,
    reference,
):
    ref_state, _, ref_visits = reference
    out = tmp_path / "slurm"
    cmd = child_command(digits_indexes, out, workers=0)
    env = _slurm_env()
    stopped = kill_at(cmd, out, "end:3", sig=signal.SIGUSR1, env=env)
    assert stopped.returncode == 128 + signal.SIGUSR1
    match = one_line(stopped)
    path = check_saved(match, 3, "SLURM's requeue signal SIGUSR1")
    assert match["rest"] == (
        f"could not requeue SLURM job 4242 (scontrol not found); resubmit with {resume_hint(path)}"
    )
    stderr = run_to_end(cmd, out, env=env)  # the requeued job: same command, same environment
    assert "Traceback" not in stderr
    state, ledger, visits = final_state(out)
    assert max_abs_diff(state, ref_state) == 0.0 and np.array_equal(visits, ref_visits)
    assert ledger["match"] and ledger["resumes"] == 1


def test_a_second_ctrl_c_inside_a_step_stops_at_once_without_saving(digits_indexes, tmp_path):
    out = tmp_path / "twice"
    cmd = child_command(digits_indexes, out, workers=0)
    stopped = kill_at(cmd, out, "mid-step:5:hold", sig=signal.SIGINT, then=signal.SIGINT)
    assert stopped.returncode == 1  # Lightning's exit status after a KeyboardInterrupt
    (run_dir,) = (out / "trained_models" / "simclr").glob("*")
    (kept,) = run_dir.glob("*.ckpt")  # the periodic checkpoint of step 4; step 6 never finished
    assert kept.name.endswith("-step=4.ckpt") and verify(kept) is None
    lines = [line for line in stopped.stderr.splitlines() if line.startswith("interrupted")]
    assert lines == [
        "interrupted by a second SIGINT (Ctrl-C) after step 5, inside a step or a validation: "
        f"nothing saved; resume from the last checkpoint with {resume_hint(kept)}"
    ], stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr


@pytest.mark.slow  # about 30 s on 2 cores: two DDP start-ups and a resume
def test_ddp_ranks_stop_at_the_same_step_when_only_rank_zero_is_signalled(digits_indexes, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        *child_command(digits_indexes, out, workers=0),
        "accelerator=cpu",
        "devices=2",
        "strategy=ddp",
    ]
    stopped = kill_at(cmd, out, "end:3", sig=signal.SIGTERM)  # rank 1 gets no signal
    assert stopped.returncode == 128 + signal.SIGTERM
    # The ranks agreed on step 3 (one collective per step) before the pause took the signal:
    # the next agreement, after step 4, carries rank 0's flag to rank 1 and both stop there.
    check_saved(one_line(stopped), 4, "SIGTERM", global_batch=64)  # both ranks' counts
    run_to_end(cmd, out)
    _, ledger, visits = final_state(out)
    assert ledger["world_size"] == 2 and ledger["optimizer_steps"] == 32 * STEPS // 64
    assert ledger["match"] and ledger["resumes"] == 1 and ledger["images_seen"] == 32 * STEPS
    assert visits.sum() == 32 * STEPS
