# SPDX-License-Identifier: MIT
"""A sweep's ``--set`` overrides: the plan announced is the one that trains, under its own key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hydra import compose, initialize_config_dir

from solo_diversity.cli import main
from solo_diversity.config.overrides import budget_overrides
from solo_diversity.config.pretrain import attach_plan, resolve_pretrain_cfg
from solo_diversity.experiments.runner import RunSettings, plan_tasks, pretrain_command
from solo_diversity.index import open_index, select_subset

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp: Path, configs: Path, digits: dict[str, Path], *extra: str) -> RunSettings:
    paths = (f"data.train_path={digits['train']}", f"data.val_path={digits['test']}")
    return RunSettings(
        results=tmp / "results.jsonl", runs=tmp / "runs", workdir=tmp, entry_dir=REPO,
        configs=configs, pretrain_set=(*paths, *extra),
    )  # fmt: skip


def _trained_steps(cmd: list[str], configs: Path) -> int:
    """The steps ``main_pretrain.py`` plans for ``cmd``: its overrides, composed as it does."""
    name = cmd[cmd.index("--config-name") + 1]
    overrides = budget_overrides(cmd[cmd.index("--config-name") + 2 :])
    with initialize_config_dir(config_dir=str(configs), version_base="1.2"):
        cfg = resolve_pretrain_cfg(compose(config_name=name, overrides=overrides))
    index = open_index(str(cfg.data.train_path))
    subset = select_subset(index, float(cfg.data.fraction))
    _, plan = attach_plan(
        cfg, dataset_size=len(index), subset_size=len(subset), num_classes=10, world_size=1
    )
    return plan.steps


def test_a_budget_override_is_planned_and_keyed_as_its_own_run(
    tmp_path, tiny_configs, digits_indexes
):
    settings = _settings(tmp_path, tiny_configs, digits_indexes)
    cell = plan_tasks("tiny_digits", settings, [0], ["f0.1"])[0]
    lower = plan_tasks(
        "tiny_digits", replace(settings, pretrain_set=(*settings.pretrain_set, "budget.C=640")),
        [0], ["f0.1"],
    )[0]  # fmt: skip
    assert (cell.cell.plan.C, cell.cell.plan.steps) == (1280, 20)
    assert (lower.cell.plan.C, lower.cell.plan.steps) == (640, 10)  # C / G = 640 / 64
    assert "-C0.00064M-" in lower.cell.run_key and lower.cell.run_key != cell.cell.run_key
    assert lower.folder != cell.folder
    cmd = pretrain_command(lower, replace(settings, pretrain_set=lower.cell.extra))
    assert _trained_steps(cmd, tiny_configs) == lower.cell.plan.steps == 10


def test_paths_and_workers_leave_the_run_key_alone(tmp_path, tiny_configs, digits_indexes):
    bare = replace(_settings(tmp_path, tiny_configs, digits_indexes), pretrain_set=())
    plain = plan_tasks("tiny_digits", bare, [0], ["f0.1"])[0]
    moved = plan_tasks(
        "tiny_digits",
        _settings(tmp_path, tiny_configs, digits_indexes, "data.num_workers=3", "loggers=[]"),
        [0], ["f0.1"],
    )[0]  # fmt: skip
    assert moved.cell.run_key == plain.cell.run_key
    lr = plan_tasks(
        "tiny_digits", _settings(tmp_path, tiny_configs, digits_indexes, "optimizer.lr=0.1"),
        [0], ["f0.1"],
    )[0]  # fmt: skip
    assert lr.cell.run_key != plain.cell.run_key  # same plan, another run: its own folder


def test_dry_run_announces_the_overridden_budget(tmp_path, tiny_configs, digits_indexes, capsys):
    argv = [
        "experiment", "run", "tiny_digits", "--configs", str(tiny_configs), "--entry-dir",
        str(REPO), "--results", str(tmp_path / "r.jsonl"), "--runs", str(tmp_path / "runs"),
        "--only", "f0.1", "--dry-run", "--set", f"data.train_path={digits_indexes['train']}",
        "budget.C=640",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    head = next(line for line in out if line.startswith("# tiny_digits/f0.1/seed0"))
    assert "N=144 E=4.44444 D=0.225 steps=10 " in head and "-C0.00064M-" in head
    command = next(line for line in out if "main_pretrain.py" in line)
    assert command.endswith("budget.C=640") and "-C0.00064M-" in command
