# SPDX-License-Identifier: MIT
"""solo-learn's own pretraining YAMLs (cifar and imagenet-100, seven methods) run unchanged.

The files are written as upstream ships them (:mod:`tests.e2e.solo_yamls`); only the data paths
(a digits index recorded under the YAML's dataset name, ``data.format=h5``), ``accelerator=cpu``,
``wandb.offline=true`` (no network here) and a tiny ``budget.C`` are given on the command line, as
a user would.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from solo_diversity.budget.world import resolve_world
from solo_diversity.config.overrides import budget_overrides
from solo_diversity.config.pretrain import attach_plan, resolve_pretrain_cfg
from solo_diversity.config.run_config import budget_notes
from solo_diversity.index import build_index
from solo_diversity.methods import get_method
from tests import zygote
from tests.conftest import REPO
from tests.e2e.solo_yamls import METHODS, SUITES, write_suite
from tests.e2e.wandb_records import read_run

DATASET = {"cifar": "cifar10", "imagenet-100": "imagenet100"}


@pytest.fixture(scope="module")
def solo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both suites' YAML folders, and digits indexes recorded as cifar10 and imagenet100."""
    root = tmp_path_factory.mktemp("solo-learn")
    for suite in SUITES:
        write_suite(root, suite)
        for split in ("train", "test"):
            out = root / f"{DATASET[suite]}-{split}.h5"
            build_index("digits", out, dataset=DATASET[suite], split=split)
    return root


def _overrides(root: Path, suite: str) -> list[str]:
    dataset = DATASET[suite]
    return [
        f"data.train_path={root / f'{dataset}-train.h5'}",
        f"data.val_path={root / f'{dataset}-test.h5'}",
        "data.format=h5",
        "accelerator=cpu",
        "wandb.offline=true",
        "budget.C=256",
        "budget.allow_late_switches=true",  # one step: solo-learn's 10 warmup epochs are clamped
    ]


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("method", METHODS)
def test_each_upstream_yaml_resolves_plans_and_builds(solo_root, suite, method):
    with initialize_config_dir(config_dir=str(solo_root / suite), version_base="1.2"):
        raw = compose(
            config_name=f"{method}.yaml", overrides=budget_overrides(_overrides(solo_root, suite))
        )
    cfg = resolve_pretrain_cfg(raw)
    world = resolve_world("cpu", cfg.devices, int(cfg.num_nodes), cfg.strategy)
    cfg, plan = attach_plan(
        cfg, dataset_size=1438, subset_size=1438, num_classes=10, world_size=world.size
    )
    # cifar: batch 256 on devices [0]; imagenet-100: batch 128 on devices [0, 1] (2 processes)
    size = 2 if suite == "imagenet-100" else 1
    assert (world.size, plan.global_batch, plan.steps, cfg.budget_plan.world_size) == (
        size,
        256,
        1,
        size,
    )
    assert cfg.wandb.enabled is True and cfg.wandb.entity == "None"  # upstream's private.yaml
    assert budget_notes(cfg, plan)[0].startswith(
        f"max_epochs {400 if suite == 'imagenet-100' else 1000} in the config -> replaced by the "
        f"budget: {plan.steps} steps"
    )
    model = get_method(str(cfg.method))(cfg)
    assert (
        model.num_large_crops == 2
        and type(model).__name__
        == {
            "simclr": "SimCLR",
            "mocov3": "MoCoV3",
            "vicreg": "VICReg",
            "dino": "DINO",
            "byol": "BYOL",
            "barlow": "BarlowTwins",
            "swav": "SwAV",
        }[method]
    )


def test_cifar_simclr_yaml_trains_through_main_pretrain(solo_root, tmp_path):
    cmd = [
        sys.executable,
        str(REPO / "main_pretrain.py"),
        "--config-path",
        str(solo_root / "cifar"),
        "--config-name",
        "simclr.yaml",
        *_overrides(solo_root, "cifar"),
    ]
    proc = zygote.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "max_epochs 1000 in the config -> replaced by the budget: 1 steps" in proc.stdout
    (run_dir,) = (tmp_path / "trained_models" / "simclr").iterdir()
    ledger = json.loads((run_dir / "ledger.json").read_text())
    assert (ledger["images_seen"], ledger["optimizer_steps"], ledger["match"]) == (256, 1, True)
    args = json.loads((run_dir / "args.json").read_text())
    assert args["optimizer"]["kwargs"] == {
        "clip_lr": True,
        "eta": 0.02,
        "exclude_bias_n_norm": True,
        "momentum": 0.9,
    }
    assert args["max_epochs"] == 1000 and args["budget"] == {
        "C": 256,
        "mode": "images",
        "epoch_keys": "subset",  # solo-learn's reading, the default
        "allow_late_switches": True,
    }
    version = run_dir.name
    (run_file,) = (tmp_path / "trained_models" / "logs" / "wandb").glob(f"*-{version}/*.wandb")
    run = read_run(run_file)
    assert (run["name"], run["project"]) == ("simclr-cifar10", "solo-learn")
    assert run["config"]["budget_plan"]["steps"] == 1 and run["summary"]["ledger/C_eff"] == 256
