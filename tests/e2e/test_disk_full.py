# SPDX-License-Identifier: MIT
"""A disk that fills up during a run: one line, the older checkpoint intact, an exact resume.

The run's folder is a small tmpfs. It has room for the run at the start (so any free-space check
before the first step passes); once the step-4 checkpoint is written, the test fills the disk as
another job would, leaving less than one checkpoint free, so that saving step 8 fails. The user
then frees space (the filler is removed) and reruns with auto-resume, which continues from step 4
to the same final weights and per-image visit counts as an uninterrupted run.

Mounting needs root; as another user the test reruns itself inside ``unshare -rm`` (a private
user and mount namespace), and fails with a clear message when that is not possible either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from solo_diversity.checkpoint_files import verify
from tests.conftest import REPO
from tests.e2e.test_exact_resume import (
    _command,
    final_state,
    kill_at,
    max_abs_diff,
    reference,  # noqa: F401 - the shared fixture, requested lazily
    run_to_end,
)

INSIDE_ENV = "DISK_FULL_TEST_IN_NAMESPACE"
DISK_MB = 40  # about 8 checkpoints of the test's model


def _mount_tmpfs(folder: Path, megabytes: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
        check=True,
        capture_output=True,
    )


def _rerun_in_namespace(name: str) -> None:
    """Run this test again as the root of a private user and mount namespace."""
    if shutil.which("unshare") is None:
        pytest.fail("the full-disk test mounts a tmpfs: run it as root, or install unshare")
    proc = subprocess.run(
        ["unshare", "-rm", sys.executable, "-m", "pytest", "-x", "-q", f"{__file__}::{name}"],
        cwd=REPO,
        env={**os.environ, INSIDE_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        "the full-disk test in `unshare -rm` failed (are unprivileged user namespaces allowed?):\n"
        + proc.stdout[-3000:]
        + proc.stderr[-2000:]
    )


def test_a_full_disk_fails_in_one_line_and_auto_resume_continues_exactly(
    request, digits_indexes, tmp_path
):
    if os.geteuid() != 0 and not os.environ.get(INSIDE_ENV):
        _rerun_in_namespace(request.node.name)
        return
    ref_state, _, ref_visits = request.getfixturevalue("reference")
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, DISK_MB)
    try:
        cmd = _command(digits_indexes, disk, workers=0)
        filler = disk / "another-job.bin"

        def fill_the_disk() -> None:  # paused after step 5: the step-4 checkpoint exists
            (step4,) = disk.glob("trained_models/simclr/*/*-step=4.ckpt")
            stat = os.statvfs(disk)
            free = stat.f_bavail * stat.f_frsize
            filler.write_bytes(b"\0" * (free - step4.stat().st_size // 2))

        failed = kill_at(cmd, disk, "end:5", sig=None, on_pause=fill_the_disk)
        assert failed.returncode == 2, failed.stdout[-2000:] + failed.stderr[-3000:]
        (run_dir,) = (disk / "trained_models" / "simclr").glob("*")
        (kept,) = run_dir.glob("*.ckpt")
        assert kept.name.endswith("-step=4.ckpt") and verify(kept) is None
        wanted = run_dir / kept.name.replace("-step=4.ckpt", "-step=8.ckpt")
        errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
        assert errors == [
            f"error: could not write checkpoint {wanted} (No space left on device); "
            f"{kept} is intact"
        ]
        assert "Traceback" not in failed.stderr + failed.stdout
        assert not list(disk.rglob("*.tmp")) and not wanted.exists()

        filler.unlink()  # the user frees space, then reruns the same command
        run_to_end(cmd, disk)
        state, ledger, visits = final_state(disk)
        assert max_abs_diff(state, ref_state) == 0.0
        assert np.array_equal(visits, ref_visits)
        assert ledger["match"] and ledger["resumes"] == 1
        assert not list(disk.rglob("*.tmp"))
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True)
