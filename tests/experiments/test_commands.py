# SPDX-License-Identifier: MIT
"""The commands a cell runs: its overrides, seed and folder; each probe on the right images."""

from __future__ import annotations

import json
from pathlib import Path

from solo_diversity.experiments.cells import load_experiment
from solo_diversity.experiments.runner import (
    RunSettings,
    plan_tasks,
    pretrain_command,
    probe_command,
)

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp: Path) -> RunSettings:
    return RunSettings(
        results=tmp / "r.jsonl", runs=tmp / "runs", workdir=tmp, entry_dir=REPO, python="python"
    )


def _task(table: str, cell: str, tmp: Path):
    return plan_tasks(table, _settings(tmp), [3], [cell])[0]


def _finished(task, data: dict) -> Path:
    folder = task.folder / task.cell.method / "v1"
    folder.mkdir(parents=True)
    (folder / "args.json").write_text(json.dumps({"data": data}))
    (folder / "ledger.json").write_text("{}")
    ckpt = folder / "run-ep=1.ckpt"
    ckpt.write_bytes(b"")
    return ckpt


def test_pretraining_has_the_cells_overrides_seed_and_folder(tmp_path):
    task = _task("table1_cifar100", "byol-f0.5", tmp_path)
    cmd = pretrain_command(task, _settings(tmp_path))
    assert cmd[:4] == ["python", str(REPO / "main_pretrain.py"), "--config-name", "byol_div"]
    assert "data.fraction=0.5" in cmd and "budget.C=50e6" in cmd and "++seed=3" in cmd
    assert f"checkpoint.dir={task.folder.resolve()}" in cmd and "auto_resume.enabled=True" in cmd
    assert task.folder == tmp_path / "runs" / task.cell.run_key / "seed3"


def test_a_probe_after_a_built_set_trains_on_the_probe_sets_images(tmp_path, monkeypatch):
    monkeypatch.setenv("FIG3_SETS", str(tmp_path / "sets"))
    task = _task("fig3_imagenet100", "simclr-out_source", tmp_path)
    ckpt = _finished(task, {"dataset": "imagenet100", "train_path": "u.h5", "format": "h5"})
    cmd = probe_command(task, task.probes[0], ckpt, _settings(tmp_path))
    # not the union it was pretrained on (B u A_out has 200 classes): ImageNet-100's folders
    assert "data.train_path=datasets/imagenet100/train" in cmd
    assert "data.val_path=datasets/imagenet100/val" in cmd and "data.format=image_folder" in cmd
    assert f"pretrained_feature_extractor='{ckpt.resolve()}'" in cmd  # '=' in the name: quoted
    assert "max_epochs=100" in cmd and "scheduler.lr_decay_steps=[60,80]" in cmd


def test_a_downstream_probe_reads_its_own_data_group(tmp_path):
    first = load_experiment("table2_imagenet_yfcc").cells[0].id
    task = _task("table2_imagenet_yfcc", first, tmp_path)
    cars = next(p for p in task.probes if p.dataset == "stanford_cars")
    ckpt = _finished(task, {"dataset": task.cell.dataset, "val_path": "x"})
    cmd = probe_command(task, cars, ckpt, _settings(tmp_path))
    assert "data.dataset=stanford_cars" in cmd
    assert "data.train_path=datasets/stanford_cars/train" in cmd


def test_a_same_set_probe_keeps_the_runs_paths_and_adds_a_val_split_it_lacked(tmp_path):
    task = _task("mini_paper_fashion_mnist", "byol-n2560", tmp_path)
    ckpt = _finished(task, {"dataset": "fashion_mnist", "train_path": "t.h5", "val_path": None})
    cmd = probe_command(task, task.probes[0], ckpt, _settings(tmp_path))
    assert not any(a.startswith("data.train_path=") for a in cmd)
    assert "data.val_path=datasets/fashion_mnist/test.h5" in cmd
    assert "data.label_fraction=0.1" in cmd and "++check_val_every_n_epoch=5" in cmd


def test_the_slurm_sweep_asks_for_the_cells_resources(tmp_path):
    from solo_diversity.experiments.launch import ClusterOptions, sweep_command

    settings = RunSettings(
        results=tmp_path / "r.jsonl",
        runs=tmp_path / "runs",
        workdir=tmp_path,
        entry_dir=REPO,
        python="python",
        devices=4,
        nodes=2,
    )
    tasks = plan_tasks("table1_cifar100", settings, [0, 1], ["simclr-f0.1", "dino-f1.0"])
    cmd = sweep_command(
        "table1_cifar100",
        tasks,
        settings,
        "slurm",
        ClusterOptions(partition="gpu", timeout_min=600, max_requeues=5),
    )
    assert cmd[:5] == [
        "python",
        "-m",
        "solo_diversity.experiments.sweep",
        "--multirun",
        "hydra/launcher=submitit_slurm",
    ]
    assert ("task='simclr-f0.1:0','simclr-f0.1:1','dino-f1.0:0','dino-f1.0:1'") in cmd
    for part in (
        "hydra.launcher.partition=gpu",
        "hydra.launcher.nodes=2",
        "hydra.launcher.gpus_per_node=4",
        "hydra.launcher.tasks_per_node=4",
        "hydra.launcher.timeout_min=600",
        "hydra.launcher.max_num_timeout=5",
        "devices=4",
        "nodes=2",
    ):
        assert part in cmd
    # the recipe's global batch is kept on 8 processes (32 images each), so LR and steps are too
    assert tasks[0].cell.plan.global_batch == 256
