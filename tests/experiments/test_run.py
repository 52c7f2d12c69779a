# SPDX-License-Identifier: MIT
"""``solo-div experiment run`` end to end on the digits: it runs what is missing, and only that."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

import solo_diversity
from tests.experiments.conftest import TINY

REPO = Path(__file__).resolve().parents[2]


def _run(
    args: list[str], cwd: Path, flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``solo-div experiment run ARGS`` in a fresh interpreter started with ``flags``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, *flags, "-m", "solo_diversity.cli", "experiment", "run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _common(tmp: Path, configs: Path, digits: dict[str, Path]) -> list[str]:
    return [
        "tiny_digits",
        "--configs",
        str(configs),
        "--entry-dir",
        str(REPO),
        "--results",
        str(tmp / "results.jsonl"),
        "--runs",
        str(tmp / "runs"),
        "--set",
        f"data.train_path={digits['train']}",
        f"data.val_path={digits['test']}",
    ]


def _lines(path: Path) -> list[dict]:
    return [json.loads(t) for t in path.read_text().splitlines() if t.strip()]


def _assert_provenance(lines: list[dict], runs: Path) -> None:
    """Each line names its cell, run, time, code and device; the pretraining time is the sweep's."""
    for record in lines:
        assert record["table"] == "tiny_digits" and record["cell"] in ("f0.1", "f0.5")
        folder = runs / record["run_key"] / "seed0"
        assert str(folder) in record["checkpoint"]
        wall = json.loads((folder / "wall_time.json").read_text())["pretrain_seconds"]
        assert record["pretrain_seconds"] == pytest.approx(wall) and wall > 0
        assert 0 < record["probe_seconds"] <= record["wall_seconds"]
        stamp = datetime.fromisoformat(record["timestamp"])
        assert stamp.utcoffset() == timedelta(0)
        assert abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 900
        assert record["version"] == solo_diversity.__version__
        assert record["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", record["git_commit"])
        assert record["device"] == "cpu"


def test_dry_run_lists_each_cell_with_its_plan(tmp_path, tiny_configs, digits_indexes):
    out = _run([*_common(tmp_path, tiny_configs, digits_indexes), "--dry-run"], tmp_path)
    assert out.returncode == 0, out.stderr
    heads = [line for line in out.stdout.splitlines() if line.startswith("# ")]
    assert len(heads) == 2
    # digits train has 1,437 images: N = 144 and 719, C = 1,280 at batch 64 -> 20 steps
    assert "N=144 E=8.88889 D=0.1125 steps=20" in heads[0]
    assert "N=719 " in heads[1] and "steps=20" in heads[1]
    commands = out.stdout.splitlines()
    assert sum("main_pretrain.py --config-name simclr_div" in x for x in commands) == 2
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results.jsonl").exists()


@dataclass(frozen=True)
class Finished:
    """One tiny_digits sweep run to its end, shared by the tests that rerun it."""

    root: Path
    common: list[str]
    first: subprocess.CompletedProcess[str]
    lines: list[dict]  # the result lines the first run wrote
    stamps: dict[Path, int]  # each checkpoint's mtime after the first run

    @property
    def results(self) -> Path:
        return self.root / "results.jsonl"

    def checkpoint_stamps(self) -> dict[Path, int]:
        return {p: p.stat().st_mtime_ns for p in sorted((self.root / "runs").rglob("*.ckpt"))}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, digits_indexes) -> Finished:
    """Run the two cells once (pretraining and probes); each test leaves the sweep finished."""
    root = tmp_path_factory.mktemp("sweep")
    configs = root / "yaml_configs"
    shutil.copytree(REPO / "yaml_configs", configs)
    (configs / "experiments" / "tiny_digits.yaml").write_text(yaml.safe_dump(TINY))
    common = _common(root, configs, digits_indexes)
    first = _run(common, root)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    lines = _lines(root / "results.jsonl")
    stamps = {p: p.stat().st_mtime_ns for p in sorted((root / "runs").rglob("*.ckpt"))}
    return Finished(root, common, first, lines, stamps)


def test_first_run_writes_each_line_with_its_provenance(finished):
    lines, first = finished.lines, finished.first
    assert sorted(r["N"] for r in lines) == [144, 719]
    assert all(r["probe_mode"] == "protocol" and r["seed"] == 0 for r in lines)
    _assert_provenance(lines, finished.root / "runs")
    assert re.search(
        r"^\[1/2\] tiny_digits/f0\.1/seed0 \(elapsed 0:00, ETA unknown\)$", first.stdout, re.M
    )
    assert re.search(
        r"^\[2/2\] tiny_digits/f0\.5/seed0 \(elapsed \d+:\d\d, ETA \d+:\d\d\)$", first.stdout, re.M
    )
    for harmless in ("LeafSpec", "module(s) in eval mode", "across ranks is zero"):
        assert harmless not in first.stderr  # hidden on the entry points


def test_second_run_runs_nothing(finished):
    second = _run(finished.common, finished.root)
    assert second.returncode == 0, second.stderr
    assert "to run: 0 pretraining(s), 0 probe(s)" in second.stdout
    assert _lines(finished.results) == finished.lines
    assert finished.checkpoint_stamps() == finished.stamps


def test_a_finished_sweep_reruns_without_a_subprocess_or_torch(finished, tmp_path):
    """The rerun decides from the results file and the run folders, in its one process."""
    marker = tmp_path / "started"
    python = tmp_path / "python"  # the commands' interpreter: says so, and fails, if started
    python.write_text(f"#!/bin/sh\ntouch {marker}\nexit 3\n")
    python.chmod(0o755)
    rerun = _run([*finished.common, "--python", str(python)], finished.root, ("-X", "importtime"))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.stdout == (
        "tiny_digits: 2 cell x seed, 2 done; to run: 0 pretraining(s), 0 probe(s)\n"
    )
    assert not marker.exists()
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in rerun.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "solo_diversity.experiments.runner" in imported  # the rerun did plan its tasks
    assert not imported & {"torch", "lightning", "pytorch_lightning", "solo_diversity.methods"}
    assert _lines(finished.results) == finished.lines


def test_a_lost_line_only_probes(finished):
    lines, results = finished.lines, finished.results
    keep = [r for r in lines if r["N"] != 144]  # lose the N=144 probe line: only it reruns
    results.write_text("".join(json.dumps(r) + "\n" for r in keep))
    try:
        _assert_only_the_lost_line_reruns(finished)
    finally:  # the next test finds the sweep as the first run left it
        results.write_text("".join(json.dumps(r) + "\n" for r in lines))


def _assert_only_the_lost_line_reruns(finished: Finished) -> None:
    lines, results = finished.lines, finished.results
    third = _run(finished.common, finished.root)
    assert third.returncode == 0, third.stderr
    assert "to run: 0 pretraining(s), 1 probe(s)" in third.stdout
    assert "pretraining:" not in third.stdout and "probing digits@1" in third.stdout
    again = _lines(results)
    assert sorted(r["N"] for r in again) == [144, 719]
    assert finished.checkpoint_stamps() == finished.stamps
    redone = next(r for r in again if r["N"] == 144)
    before = next(r for r in lines if r["N"] == 144)
    assert redone["checkpoint"] == before["checkpoint"]
    assert redone["acc1"] == pytest.approx(before["acc1"], abs=1e-9)  # same seeds, same probe


def test_a_bad_cell_id_is_one_line(tmp_path, tiny_configs, digits_indexes):
    out = _run([*_common(tmp_path, tiny_configs, digits_indexes), "--only", "nope"], tmp_path)
    assert out.returncode == 2
    assert "tiny_digits has no cell 'nope'" in out.stderr
    assert "Traceback" not in out.stderr


def test_submitit_local_sweep_runs_two_cells(tmp_path, tiny_configs, digits_indexes):
    common = _common(tmp_path, tiny_configs, digits_indexes)
    out = _run([*common, "--launcher", "submitit_local", "--timeout-min", "20"], tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = _lines(tmp_path / "results.jsonl")
    assert sorted(r["N"] for r in lines) == [144, 719]
    _assert_provenance(lines, tmp_path / "runs")  # a cluster job's lines name their cell too
    jobs = sorted((tmp_path / "runs" / ".sweeps" / "tiny_digits" / ".submitit").glob("*"))
    assert len(jobs) >= 2  # one submitit folder per job of the array
    again = _run([*common, "--launcher", "submitit_local"], tmp_path)
    assert again.returncode == 0 and "to run: 0 pretraining(s), 0 probe(s)" in again.stdout
