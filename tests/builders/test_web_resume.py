# SPDX-License-Identifier: MIT
"""``solo-div build web`` killed in the middle of a download shard, then run again.

The build runs as a real process (the CLI) against a local server; the test kills its whole
process group with SIGKILL while an image of the fourth shard is being served, then reruns the
same command. What must hold: no partial files, no duplicates, finished shards not fetched again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from solo_diversity.index.reader import open_index
from tests import zygote
from tests.builders.web_server import Catalog, SearchServer, Served, jpeg, smooth_image

COUNT, SHARD, BLOCKER = 30, 5, 17  # image 17 is in shard 3 (0-based)
REPO = Path(__file__).resolve().parents[2]


def _command(server: SearchServer, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "solo_diversity.builders.web.cli", "build", "web",
        "--classes", str(out.parent / "classes.txt"), "--out", str(out),
        "--per-class", str(COUNT), "--collect-factor", "1", "--engines", "ddg",
        "--ddg-url", f"{server.url}/ddg", "--interval", "ddg=0", "--min-size", "32",
        "--shard-size", str(SHARD), "--threads", "2", "--timeout", "8", "--retries", "0",
    ]  # fmt: skip


def _wait_for(server: SearchServer, path: str, limit: float) -> None:
    end = time.monotonic() + limit
    while not server.requests(path):
        assert time.monotonic() < end, f"the build never asked for {path}"
        time.sleep(0.05)


def test_killed_build_resumes_without_duplicates_or_partial_files(tmp_path: Path) -> None:
    names = [f"cat_{i:02d}" for i in range(COUNT)]
    images = {n: Served(jpeg(smooth_image(300 + i))) for i, n in enumerate(names)}
    images[names[BLOCKER]].delay = 6.0
    catalog = Catalog(images=images, results={("ddg", "cat"): names})
    (tmp_path / "classes.txt").write_text("cat\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_ALBUMENTATIONS_UPDATE": "1"}
    with SearchServer(catalog) as server:
        first = zygote.popen(
            _command(server, out), cwd=REPO, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_for(server, f"/img/{names[BLOCKER]}", limit=90)
            time.sleep(0.3)
        finally:
            os.killpg(first.pid, signal.SIGKILL)  # the build and img2dataset's workers
            first.wait()
        round0 = out / "downloads" / "round-0000"
        assert not (round0 / "00003_stats.json").exists()  # killed inside shard 3 ...
        assert (round0 / "00003.parquet").exists()  # ... which had begun writing
        assert (round0 / "00002_stats.json").exists()
        assert not (out / "index.h5").exists()

        images[names[BLOCKER]].delay = 0.0
        second = zygote.run(
            _command(server, out), cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 0, second.stderr[-2000:]
        fetched = Counter(r.path for r in server.requests("/img/"))

    for i in range(3 * SHARD):  # shards 0-2 finished before the kill: never fetched again
        assert fetched[f"/img/{names[i]}"] == 1
    index = open_index(out / "index.h5")
    assert len(index) == COUNT and index.class_names == ["cat"]
    manifest = pq.read_table(out / "index.h5.provenance.parquet").to_pylist()
    assert len({r["url"] for r in manifest}) == COUNT
    assert len({r["sha256"] for r in manifest}) == COUNT
    indexed = {index.entry_name(i) for i in range(len(index))}
    on_disk = {str(p.relative_to(out / "downloads")) for p in (out / "downloads").rglob("*.jpg")}
    assert on_disk == indexed  # no orphan (partial) download left
    for name in indexed:
        with Image.open(out / "downloads" / name) as image:
            image.load()
    leftovers = [p for p in out.rglob("*") if "partial" in p.name or ".build-" in p.name]
    assert leftovers == [] and not (out / "downloads" / "round-0000" / "_tmp").exists()
    index.close()


def test_ctrl_c_stops_with_130_and_a_rerun_finishes(tmp_path: Path) -> None:
    """img2dataset's own SIGINT handler exits 0; the build must still report an interruption."""
    names = [f"dog_{i:02d}" for i in range(10)]
    images = {n: Served(jpeg(smooth_image(400 + i))) for i, n in enumerate(names)}
    images[names[7]].delay = 6.0
    catalog = Catalog(images=images, results={("ddg", "cat"): names})
    (tmp_path / "classes.txt").write_text("cat\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_ALBUMENTATIONS_UPDATE": "1"}
    with SearchServer(catalog) as server:
        argv = _command(server, out)
        argv[argv.index("--per-class") + 1] = "10"
        first = zygote.popen(
            argv, cwd=REPO, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _wait_for(server, f"/img/{names[7]}", limit=90)
            first.send_signal(signal.SIGINT)
            _, err = first.communicate(timeout=60)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
                first.wait()
        assert first.returncode == 130, err[-2000:]
        assert "run the same command again to resume" in err
        images[names[7]].delay = 0.0
        second = subprocess.run(
            argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 0, second.stderr[-2000:]
    assert len(open_index(out / "index.h5")) == 10
