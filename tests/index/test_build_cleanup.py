# SPDX-License-Identifier: MIT
"""Index builds clean up after themselves: a killed build leaves nothing at the destination, and
the next build of the same destination removes its working folder (spool files, half index).

A build is stopped at a known point by making one of its images a FIFO: the embedding build
blocks opening it, with its working folder and lock in place, until the test kills it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from solo_diversity import cli
from solo_diversity.index import build_index, open_index
from solo_diversity.index.writer import LOCK_NAME, build_dir, remove_stale_builds
from tests import zygote
from tests.index.conftest import encoded_image


def image_folder(root: Path, count: int = 40) -> Path:
    for i in range(count):
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"c{i % 2}" / f"img{i:03d}.png").write_bytes(encoded_image(i, "PNG"))
    return root


def blocked_build(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, Path]:
    """``solo-div index build --embed`` in a subprocess, blocked on a FIFO mid-spool."""
    root = image_folder(tmp_path / "images")
    os.mkfifo(root / "c1" / "zzz_fifo.png")  # sorted last: every other image is read first
    out = tmp_path / "dest" / "idx.h5"
    command = [sys.executable, "-m", "solo_diversity.cli", "index", "build", "folder", str(out),
               "--root", str(root), "--embed"]  # fmt: skip
    proc = zygote.popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folder = build_dir(out, proc.pid)
    deadline = time.monotonic() + 120
    while not (folder / "payload.bin").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the build never started spooling"
        time.sleep(0.05)
    return proc, out, folder


def unblock(tmp_path: Path) -> None:
    fifo = tmp_path / "images" / "c1" / "zzz_fifo.png"
    fifo.unlink()
    fifo.write_bytes(encoded_image(99, "PNG"))


def test_sigkill_mid_build_leaves_nothing_and_the_next_build_cleans_up(tmp_path, caplog):
    proc, out, folder = blocked_build(tmp_path)
    assert remove_stale_builds(out) == []  # a live build's folder is never taken away
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not out.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == [folder.name]  # what SIGKILL leaves
    assert (folder / LOCK_NAME).exists() and (folder / "payload.bin").exists()
    unblock(tmp_path)
    caplog.set_level("WARNING", logger="solo_diversity")
    build_index("folder", out, root=tmp_path / "images", embed=True)
    assert sorted(p.name for p in out.parent.iterdir()) == ["idx.h5"]  # leftover gone
    assert f"removed {folder} (" in caplog.text and "left by an interrupted build" in caplog.text
    clean = build_index("folder", tmp_path / "clean" / "idx.h5", root=tmp_path / "images",
                        embed=True)  # fmt: skip
    assert open_index(out).fingerprint == open_index(clean).fingerprint
    assert len(open_index(out)) == 41


def test_sigterm_mid_build_cleans_up_and_says_so_in_one_line(tmp_path):
    proc, out, folder = blocked_build(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: index build stopped; nothing was written to {out}"]
    assert list(out.parent.iterdir()) == []  # no destination, no working folder


def test_a_build_killed_before_it_took_its_lock_is_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "idx.h5"
    leftover = build_dir(out, dead.pid)
    leftover.mkdir()
    (leftover / "payload.bin").write_bytes(b"x" * 1000)
    alive = build_dir(out, os.getpid())  # a live process, no lock file yet
    alive.mkdir()
    assert remove_stale_builds(out) == [leftover]
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name]


def test_a_build_of_an_unreadable_root_leaves_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["index", "build", "folder", str(tmp_path / "idx.h5"),
                  "--root", str(tmp_path / "nowhere")])  # fmt: skip
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        f"error: folder source folder does not exist: {tmp_path / 'nowhere'}\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_build_failing_mid_stream_leaves_nothing(tmp_path, capsys):
    # Every file is a dangling link: the embedding build spools nothing and fails after it began.
    root = tmp_path / "images" / "c0"
    root.mkdir(parents=True)
    for i in range(3):
        (root / f"gone{i}.png").symlink_to(tmp_path / f"missing{i}.png")
    out = tmp_path / "dest" / "idx.h5"
    with pytest.raises(SystemExit):
        cli.main(["index", "build", "folder", str(out), "--root", str(root.parent), "--embed"])
    err = capsys.readouterr().err
    assert err.endswith(f"error: source 'folder:{root.parent}' has no entries; nothing to index\n")
    assert list(out.parent.iterdir()) == []  # the working folder was made, and removed
