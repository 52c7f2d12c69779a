# SPDX-License-Identifier: MIT
"""A small tmpfs for the full-disk tests, mounted as root or inside ``unshare -rm``.

Mounting needs root; as another user a test reruns itself inside a private user and mount
namespace (:func:`rerun_in_namespace`), and fails with a clear message when that is not possible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

INSIDE_ENV = "DISK_FULL_TEST_IN_NAMESPACE"


def needs_namespace() -> bool:
    """True when this process can't mount and should rerun the test in a namespace."""
    return os.geteuid() != 0 and not os.environ.get(INSIDE_ENV)


def mount_tmpfs(folder: Path, megabytes: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
        check=True,
        capture_output=True,
    )


def rerun_in_namespace(test_file: str, name: str, timeout: int) -> None:
    """Run one test of ``test_file`` again as the root of a private user and mount namespace."""
    if shutil.which("unshare") is None:
        pytest.fail("the full-disk test mounts a tmpfs: run it as root, or install unshare")
    proc = subprocess.run(
        ["unshare", "-rm", sys.executable, "-m", "pytest", "-x", "-q", f"{test_file}::{name}"],
        cwd=REPO,
        env={**os.environ, INSIDE_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0 and "1 passed" in proc.stdout, (
        "the full-disk test in `unshare -rm` failed (are unprivileged user namespaces allowed?):\n"
        + proc.stdout[-3000:]
        + proc.stderr[-2000:]
    )
