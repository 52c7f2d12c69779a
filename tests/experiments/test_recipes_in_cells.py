# SPDX-License-Identifier: MIT
"""The cells compose the paper's recipes: values checked against their sources, typed in here.

The expected numbers are read off the upstream files (solo-learn's
``scripts/pretrain/imagenet-100/*.yaml`` and ``scripts/linear/imagenet-100/*.yaml``, SimCLR's
README / ``run.py``, MoCo v3's ``CONFIG.md`` / ``main_moco.py``, the paper's fork's
``scripts/pretrain/imagenet/custom.yaml``), not from this project's YAMLs.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from pathlib import Path

import pytest

from solo_diversity.experiments.cells import list_names, load_experiment
from solo_diversity.experiments.plan import resolve_cell
from solo_diversity.experiments.runner import RunSettings, plan_tasks, probe_command

REPO = Path(__file__).resolve().parents[2]

# solo-learn scripts/pretrain/imagenet-100/<method>.yaml: method_kwargs, optimizer, lr, weight
# decay; every file: batch_size 128 per device on devices [0, 1] (global 256), LARS.
IMAGENET100 = {
    "simclr": ({"proj_hidden_dim": 4096, "proj_output_dim": 512, "temperature": 0.2}, 0.3, 1e-4),
    "barlow_twins": (
        {"proj_hidden_dim": 2048, "proj_output_dim": 2048, "scale_loss": 0.1},
        0.3,
        1e-4,
    ),
    "byol": ({"proj_hidden_dim": 4096, "proj_output_dim": 256, "pred_hidden_dim": 8192}, 0.5, 1e-6),
    "swav": (
        {
            "proj_hidden_dim": 2048,
            "queue_size": 3840,
            "proj_output_dim": 128,
            "num_prototypes": 3000,
            "epoch_queue_starts": 50,
            "freeze_prototypes_epochs": 2,
            "temperature": 0.1,
        },
        0.6,
        1e-6,
    ),
    "vicreg": (
        {
            "proj_hidden_dim": 2048,
            "proj_output_dim": 2048,
            "sim_loss_weight": 25.0,
            "var_loss_weight": 25.0,
            "cov_loss_weight": 1.0,
        },
        0.3,
        1e-4,
    ),
    "mocov3": (
        {
            "proj_hidden_dim": 4096,
            "proj_output_dim": 256,
            "pred_hidden_dim": 4096,
            "temperature": 0.2,
        },
        0.3,
        1e-6,
    ),
    "dino": (
        {
            "proj_hidden_dim": 2048,
            "proj_output_dim": 256,
            "num_prototypes": 4096,
            "warmup_teacher_temperature_epochs": 50,
        },
        0.3,
        1e-6,
    ),
}
# solo-learn scripts/linear/imagenet-100/<method>.yaml: SGD lr at batch 256, weight decay 0.
PROBE_LR = {
    "simclr": 1.0,
    "byol": 0.3,
    "dino": 0.3,
    "mocov3": 0.3,
    "vicreg": 0.3,
    "swav": 0.15,
    "barlow_twins": 0.1,
}


def _cell(table: str, cell_id: str, **kw):
    return resolve_cell(load_experiment(table).cell(cell_id), env={}, **kw)


def _kwargs(cell) -> dict:
    return dict(cell.record["method_kwargs"])


@pytest.mark.parametrize("method", sorted(IMAGENET100))
def test_fig3_composes_solo_learns_imagenet100_recipe(method):
    cell = _cell("fig3_imagenet100", f"{method}-B")
    kwargs, lr, wd = IMAGENET100[method]
    assert kwargs.items() <= _kwargs(cell).items()
    assert (cell.optimizer, cell.lr, cell.weight_decay) == ("lars", lr, wd)
    assert (cell.backbone, cell.plan.global_batch) == ("resnet18", 256)
    assert cell.recipe.scale == "imagenet100"


def test_table2_resnet50_cells_compose_the_original_papers_recipes():
    simclr = _cell("table2_imagenet_yfcc", "simclr-resnet50-in1.0")  # SimCLR README / run.py
    assert (simclr.optimizer, simclr.lr, simclr.weight_decay) == ("lars", 0.3, 1e-4)
    assert {"temperature": 0.1, "proj_hidden_dim": 2048, "proj_output_dim": 128}.items() <= (
        _kwargs(simclr).items()
    )
    mocov3 = _cell("table2_imagenet_yfcc", "mocov3-resnet50-in1.0")  # MoCo v3 CONFIG.md, R-50
    assert (mocov3.optimizer, mocov3.lr, mocov3.weight_decay) == ("lars", 0.6, 1e-6)
    assert _kwargs(mocov3)["temperature"] == 1.0
    assert simclr.plan.global_batch == mocov3.plan.global_batch == 4096
    assert simclr.backbone == mocov3.backbone == "resnet50"


def test_table2_vit_cells_compose_the_vit_recipes():
    mocov3 = _cell("table2_imagenet_yfcc", "mocov3-vit_base-in1.0")  # MoCo v3 CONFIG.md, ViT-B
    assert (mocov3.optimizer, mocov3.lr, mocov3.weight_decay) == ("adamw", 1.5e-4, 0.1)
    assert (mocov3.plan.global_batch, _kwargs(mocov3)["temperature"]) == (4096, 0.2)
    simclr = _cell("table2_imagenet_yfcc", "simclr-vit_base-in1.0")  # the fork's custom.yaml
    assert (simclr.optimizer, simclr.lr, simclr.weight_decay) == ("adamw", 0.002, 0.05)
    assert mocov3.recipe.arch == simclr.recipe.arch == "vit"


def test_more_devices_keep_the_global_batch_lr_and_steps():
    for table, cell_id in [
        ("table2_imagenet_yfcc", "mocov3-resnet50-in0.1"),
        ("fig3_imagenet100", "swav-in_source"),
        ("table1_cifar100", "dino-f0.5"),
    ]:
        one, four = _cell(table, cell_id), _cell(table, cell_id, devices=4, nodes=2)
        assert (four.plan.global_batch, four.lr, four.plan.steps, four.warmup_steps) == (
            one.plan.global_batch,
            one.lr,
            one.plan.steps,
            one.warmup_steps,
        )
        assert four.record["devices"] == 4 and four.run_key == one.run_key


def test_fig3_probes_carry_solo_learns_per_method_lr(tmp_path):
    settings = RunSettings(
        results=tmp_path / "r.jsonl",
        runs=tmp_path / "runs",
        workdir=tmp_path,
        entry_dir=REPO,
        python="python",
    )
    seen = {}
    for task in plan_tasks("fig3_imagenet100", settings, [0]):
        cmd = probe_command(task, task.probes[0], tmp_path / "last.ckpt", settings)
        lrs = [a for a in cmd if a.startswith("optimizer.lr=")]
        assert len(lrs) == 1 and not any(a.startswith("optimizer.weight_decay=") for a in cmd)
        seen.setdefault(task.cell.method, set()).add(float(lrs[0].split("=")[1]))
    assert seen == {m: {lr} for m, lr in PROBE_LR.items()}


def _all_cells():
    for name in list_names():
        for spec in load_experiment(name).cells:
            yield resolve_cell(spec, env={})


def test_every_cell_of_every_list_warms_up_for_under_a_quarter_of_its_run():
    cells = list(_all_cells())
    assert len(cells) >= 300
    late = [
        (c.spec.table, c.spec.id, c.warmup_steps, c.plan.steps)
        for c in cells
        if not c.warmup_steps < c.plan.steps / 4
    ]
    assert late == []


def test_yfcc_and_imagenet_cells_at_one_budget_share_the_warmup():
    warmups = defaultdict(set)
    for c in _all_cells():
        if c.dataset in ("imagenet", "yfcc100m"):
            warmups[(c.method, c.backbone, c.plan.C)].add((c.dataset, c.warmup_steps))
    pairs = [w for w in warmups.values() if {d for d, _ in w} == {"imagenet", "yfcc100m"}]
    assert len(pairs) >= 6  # Table 2's four (method, backbone), Supp. Table 2's two
    assert all(len({steps for _, steps in w}) == 1 for w in pairs), pairs


def test_vit_cells_pick_the_vit_recipe():
    vit = [c for c in _all_cells() if c.backbone.startswith("vit")]
    assert vit and all(c.recipe.arch == "vit" and c.spec.overrides["arch"] == "vit" for c in vit)


def test_schedule_semantics_pairs_table1a_runs_with_reference_runs():
    sub = _cell("supp_schedule_semantics", "simclr-f0.1-subset")
    ref = _cell("supp_schedule_semantics", "simclr-f0.1-reference")
    table1 = _cell("table1_cifar100", "simclr-f0.1")
    assert sub.run_key == table1.run_key != ref.run_key  # the subset column is Table 1(a)'s run
    assert (sub.warmup_steps, ref.warmup_steps) == (190, 1953)
    assert len(load_experiment("supp_schedule_semantics").cells) == 42


def test_supp_fig1_baseline_trains_on_fig3s_b(monkeypatch, tmp_path):
    monkeypatch.setenv("FIG3_SETS", str(tmp_path))
    base = _cell("supp_epoch_normalized", "dino-B-e400")
    fig3 = _cell("fig3_imagenet100", "dino-B")
    assert base.spec.overrides["data.train_path"] == fig3.spec.overrides["data.train_path"]
    assert "data.fraction" not in base.spec.overrides and base.plan.N == fig3.plan.N == 63_345
    assert base.plan.C == 400 * 63_345 and base.pretrain_set == "imagenet100"


def test_dry_run_line_shows_warmup_and_recipe(tmp_path):
    import contextlib
    import io

    from solo_diversity.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert (
            main(
                [
                    "experiment",
                    "run",
                    "fig3_imagenet100",
                    "--dry-run",
                    "--only",
                    "simclr-B",
                    "simclr-in_source",
                    "--runs",
                    str(tmp_path / "runs"),
                    "--results",
                    str(tmp_path / "r.jsonl"),
                ]
            )
            == 0
        )
    lines = out.getvalue().splitlines()
    head = next(x for x in lines if x.startswith("# fig3_imagenet100/simclr-B/seed0"))
    # subset reading: 10 warmup epochs of B's 63,345 images at 256 a step
    assert f"warmup_steps={10 * (63_345 // 256):,}" in head
    assert "recipe=imagenet100/simclr_resnet" in head and "global_batch=256" in head
    # B's set is not built here (no command); ImageNet-100 itself probes with the same recipe
    probe = shlex.split(next(x for x in lines if "main_linear.py" in x))
    assert "optimizer.lr=1" in probe
