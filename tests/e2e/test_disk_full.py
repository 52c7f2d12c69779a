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
import subprocess

import numpy as np

from solo_diversity.run.checkpoint_files import verify
from tests.e2e.resume_runs import child_command, final_state, kill_at, max_abs_diff, run_to_end
from tests.tmpfs import mount_tmpfs, needs_namespace, rerun_in_namespace

DISK_MB = 40  # about 8 checkpoints of the test's model


def test_a_full_disk_fails_in_one_line_and_auto_resume_continues_exactly(
    request, digits_indexes, tmp_path
):
    if needs_namespace():
        rerun_in_namespace(__file__, request.node.name, timeout=900)
        return
    ref_state, _, ref_visits = request.getfixturevalue("reference")
    disk = tmp_path / "disk"
    mount_tmpfs(disk, DISK_MB)
    try:
        cmd = child_command(digits_indexes, disk, workers=0)
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
