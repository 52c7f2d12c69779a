# SPDX-License-Identifier: MIT
"""One run, one writer: the lock on a run's version folder, between processes and after a SIGKILL.

Two auto-resumes of one interrupted run used to both resume into its folder (one crashed in the
CSV logger, a stray checkpoint stayed behind). Now exactly one trains and the other stops with one
line and exit code 2 before it writes anything; a lock left by a SIGKILLed run is taken over.
The children are :mod:`tests.e2e.resume_runs`'s.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from solo_diversity.errors import UserError
from solo_diversity.run.lock import (
    LOCK_NAME,
    Holder,
    held_elsewhere,
    lock_run,
    process_start,
    writes_run,
)
from tests import zygote
from tests.conftest import REPO
from tests.e2e.resume_runs import STEPS, child_command, child_env, final_state, kill_at

# A process that takes the lock on the folder in argv[1], says so, and keeps it.
HOLD = (
    "import sys, time; from solo_diversity.run.lock import lock_run; lock_run(sys.argv[1]); "
    "print('held', flush=True); time.sleep(120)"
)


def _busy_line(folder: Path, pid: int) -> re.Pattern[str]:
    return re.compile(
        rf"run folder {re.escape(str(folder))} is in use by pid {pid} on "
        rf"{re.escape(socket.gethostname())} \(since [\d-]+ [\d:]+\): one run, one writer; "
        r"wait for it to end or stop it, then run this again"
    )


@pytest.fixture
def holder(tmp_path):
    """A separate process holding the lock on ``tmp_path / "run"``."""
    folder = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield folder, proc
    proc.kill()
    proc.wait()


def test_a_second_writer_is_refused_with_one_line(holder):
    folder, proc = holder
    before = (folder / LOCK_NAME).read_bytes()
    with pytest.raises(UserError) as err:
        lock_run(folder)
    assert _busy_line(folder, proc.pid).fullmatch(str(err.value)), err.value
    assert (folder / LOCK_NAME).read_bytes() == before  # the holder's record is untouched


def test_a_lock_left_by_a_sigkilled_process_is_taken_over(holder):
    folder, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((folder / LOCK_NAME).read_text())["pid"] == proc.pid  # left behind
    lock = lock_run(folder)
    assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert (folder / LOCK_NAME).read_text() == ""  # released: free for the next run


def test_without_flock_the_record_decides(tmp_path):
    here = socket.gethostname()
    me = Holder.me()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=-1)
    gone = Holder(here, int(ended.stdout), None, "2026-01-01 00:00:00")
    heir = Holder(here, os.getpid(), (process_start(os.getpid()) or 0) + 1, me.since)
    assert held_elsewhere(None, me, here)  # alive
    assert not held_elsewhere(None, gone, here)  # its pid is gone
    assert not held_elsewhere(None, heir, here)  # the pid is another process's now
    assert held_elsewhere(None, Holder("node-7", 1, None, me.since), here)  # cannot check there
    assert not held_elsewhere(None, None, here)  # an empty record: released
    assert held_elsewhere(False, None, here) and not held_elsewhere(True, me, here)  # the kernel


def test_only_rank_zero_writes_the_run():
    assert writes_run({}) and writes_run({"SLURM_PROCID": "0", "LOCAL_RANK": "0"})
    for name in ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK"):
        assert not writes_run({name: "1"})


def _first_to_exit(procs: list[subprocess.Popen], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i, proc in enumerate(procs):
            if proc.poll() is not None:
                return i
        time.sleep(0.1)
    raise AssertionError("neither run stopped")


def test_two_auto_resumes_of_one_run_one_trains_and_the_other_stops_with_one_line(
    digits_indexes, tmp_path
):
    out = tmp_path / "twice"
    cmd = child_command(digits_indexes, out, workers=0)
    killed = kill_at(cmd, out, "end:5")  # a SIGKILLed run: its checkpoint of step 4, its lock
    (run_dir,) = (out / "trained_models" / "simclr").glob("*")
    dead = json.loads((run_dir / LOCK_NAME).read_text())["pid"]
    assert killed.returncode == -signal.SIGKILL and dead != os.getpid()

    # Both find the step-4 checkpoint; the winner waits at its first step, holding the folder.
    procs = [
        zygote.popen(
            cmd,
            cwd=REPO,
            env=child_env(out, "start:0"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    loser = procs.pop(_first_to_exit(procs, timeout=600))
    (winner,) = procs
    _, stderr = loser.communicate()
    assert loser.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr
    (line,) = [text for text in stderr.splitlines() if text.startswith("error:")]
    assert _busy_line(run_dir, winner.pid).fullmatch(line.removeprefix("error: ")), line
    (out / "release").touch()
    stdout, stderr = winner.communicate(timeout=600)
    assert winner.returncode == 0, stderr[-3000:]

    assert [p.name for p in (out / "trained_models" / "simclr").iterdir()] == [run_dir.name]
    _, ledger, visits = final_state(out)
    assert sorted(p.name for p in run_dir.glob("*.ckpt*")) == [
        ledger["name"],
        ledger["name"] + ".sha256",
    ]  # no stray checkpoint
    assert ledger["match"] and ledger["resumes"] == 1 and visits.sum() == 32 * STEPS
