# SPDX-License-Identifier: MIT
"""``scripts/gpu_check.sh`` on the CPU: its dry run lists the five stages, it stops without a GPU,
its stages' overrides still compose, and a stage is stopped at its time limit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from bench.gpu_check import NO_GPU, Stage, markdown, run_stage, stages
from bench.gpu_check_helpers import max_abs_diff, sd21_modules
from tests.conftest import CONFIG_DIR, REPO

STAGE_LINE = re.compile(r"^stage (\d) (\w+) \(timeout (\d+) s\): \S.*$")
NAMES = ["pretrain", "resume", "bench_loader", "bench_pretrain", "synthetic"]


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    # No CUDA device is visible to the child, whatever the machine has.
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_check.sh"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _stage_blocks(stdout: str) -> list[tuple[re.Match[str], list[str]]]:
    blocks: list[tuple[re.Match[str], list[str]]] = []
    for line in stdout.splitlines():
        if match := STAGE_LINE.match(line):
            blocks.append((match, []))
        else:
            assert line.startswith("  $ ") and blocks, line
            blocks[-1][1].append(line[4:])
    return blocks


def test_dry_run_lists_the_five_stages_in_order_with_their_commands(tmp_path):
    proc = _script(str(tmp_path / "out"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    blocks = _stage_blocks(proc.stdout)
    assert [m.group(2) for m, _ in blocks] == NAMES
    assert [int(m.group(1)) for m, _ in blocks] == [1, 2, 3, 4, 5]
    assert all(commands for _, commands in blocks)
    assert sum(int(m.group(3)) for m, _ in blocks) <= 8 * 60  # the whole check in 8 minutes
    every = "\n".join(c for _, commands in blocks for c in commands)
    assert "main_pretrain.py" in every and "scripts/bench_loader.sh" in every
    assert "scripts/bench_pretrain.sh" in every and "build synthetic" in every
    assert not (tmp_path / "out").exists()


def test_dry_run_shows_the_stage_timeout_given():
    proc = _script("--dry-run", "--stage-timeout", "7")
    assert proc.returncode == 0
    assert [m.group(3) for m, _ in _stage_blocks(proc.stdout)] == ["7"] * 5


def test_without_a_gpu_it_prints_one_line_and_writes_nothing(tmp_path):
    proc = _script(str(tmp_path / "out"))
    assert proc.returncode == 0 and proc.stdout == NO_GPU + "\n"
    assert proc.stdout.startswith("gpu_check: no CUDA device visible")
    assert not (tmp_path / "out").exists()


def test_a_stage_timeout_below_one_second_is_refused():
    proc = _script("--dry-run", "--stage-timeout", "0")
    assert proc.returncode == 2
    assert re.search(r"error: --stage-timeout must be >= 1 s, got 0", proc.stderr)


def test_the_training_stages_overrides_compose_with_the_shipped_configs(tmp_path):
    trainings = [
        cmd
        for stage in stages(tmp_path)[:2]
        for cmd in stage.commands
        if "main_pretrain.py" in cmd or "resume-check" in cmd
    ]
    assert len(trainings) == 3
    for cmd in trainings:
        overrides = [a for a in cmd if "=" in a]
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
            cfg = compose(config_name="simclr_div", overrides=overrides)
        assert cfg.backbone.name == "resnet18" and cfg.precision == "bf16-mixed"
        assert cfg.optimizer.batch_size == 256 and cfg.accelerator == "gpu"


def test_a_stage_is_stopped_at_its_limit_and_the_next_command_does_not_run(tmp_path):
    marker = tmp_path / "ran"
    stage = Stage(
        "slow",
        "sleeps past its limit",
        (
            (sys.executable, "-c", "import time; time.sleep(60)"),
            (sys.executable, "-c", f"open({str(marker)!r}, 'w')"),
        ),
        2,
        lambda out: {"seen": 1},
    )
    row = run_stage(stage, tmp_path, timeout_s=2)
    assert row["status"] == "timed out" and 1.5 <= row["seconds"] < 15
    assert row["figures"] == {"seen": 1} and not marker.exists()
    assert "time.sleep(60)" in Path(row["log"]).read_text()


def test_failed_and_ok_stages_and_their_markdown_row(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"rate": 1234.5678}))
    ok = Stage(
        "fine",
        "exits 0",
        ((sys.executable, "-c", "pass"),),
        30,
        lambda out: json.loads((out / "r.json").read_text()),
    )
    bad = Stage(
        "broken", "exits 3", ((sys.executable, "-c", "raise SystemExit(3)"),), 30, lambda out: {}
    )
    rows = [run_stage(ok, tmp_path, 30), run_stage(bad, tmp_path, 30)]
    assert [r["status"] for r in rows] == ["ok", "failed"]
    table = markdown(rows, "CPU").splitlines()
    assert table[0] == "# GPU check on CPU"
    assert table[4].startswith("| fine | ok | ") and table[4].endswith(" | rate=1235 |")
    assert table[5].startswith("| broken | failed | ") and table[5].endswith(" | - |")


def test_max_abs_diff_of_two_state_dicts():
    a = {"w": torch.tensor([1.0, 2.0]), "b": torch.zeros(0)}
    b = {"w": torch.tensor([1.0, 2.5]), "b": torch.zeros(0)}
    assert max_abs_diff(a, b) == 0.5 and max_abs_diff(a, a) == 0.0


def test_a_helper_without_its_folder_is_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "make-data"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "error: make-data needs a folder: gpu_check make-data FOLDER\n"


def test_the_random_diffusion_weights_have_stable_diffusion_2_1_sizes():
    # Built on the meta device: shapes only, nothing allocated. The counts are SD 2.1's.
    unet, vae, text = sd21_modules("meta")
    counts = [sum(p.numel() for p in m.parameters()) for m in (unet, vae, text)]
    assert counts == [865_910_724, 83_653_863, 340_387_840]
    assert unet.config.cross_attention_dim == text.config.hidden_size == 1024
    assert unet.config.sample_size * 8 == vae.config.sample_size == 768
