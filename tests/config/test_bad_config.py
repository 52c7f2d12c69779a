# SPDX-License-Identifier: MIT
"""The config corpus of bad inputs: one test per kind, each one line and nothing lost.

Every pretraining case runs :func:`run_pretrain` on a checkpoint folder that already holds an
earlier run, and checks that the run's files are byte-for-byte unchanged and that no new folder
appeared. Each entry point is also run once as a real subprocess.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from solo_diversity.config.keys import PRETRAIN_NUMBERS, check_numbers
from solo_diversity.config.probe import LINEAR_NUMBERS
from solo_diversity.errors import UserError
from solo_diversity.evaluation.linear import run_linear
from solo_diversity.methods import BUILTIN_METHODS
from solo_diversity.run.pretrain import run_pretrain
from tests import zygote
from tests.conftest import REPO

SMALL = ["optimizer.batch_size=32", "budget.C=64", "+backbone.kwargs.width=8", "data.val_path=null"]

# What each method's own numeric keys accept (its CONFIG_RANGES), specified by values just outside
# the range, refused with the line, and values inside it, accepted: key -> (outside, inside, line).
COUNT = ((0, -1, 1.5), (1, 2, 10**9), "an integer >= 1")
POSITIVE = ((0, 0.0, -1e-6), (1e-6, 1, 1e9), "a number > 0")
NON_NEGATIVE = ((-1e-6, -1), (0, 0.0, 1e-6, 1e9), "a number >= 0")
SHARE = ((-1e-6, 1.000001), (0, 0.5, 1), "a number in [0, 1]")
PROJECTOR = {"method_kwargs.proj_hidden_dim": COUNT, "method_kwargs.proj_output_dim": COUNT}
MOMENTUM = {"momentum.base_tau": SHARE, "momentum.final_tau": SHARE}
METHOD_RANGES = {
    "simclr": {**PROJECTOR, "method_kwargs.temperature": POSITIVE},
    "mocov3": {
        **MOMENTUM,
        **PROJECTOR,
        "method_kwargs.pred_hidden_dim": COUNT,
        "method_kwargs.temperature": POSITIVE,
    },
    "vicreg": {
        **PROJECTOR,
        "method_kwargs.sim_loss_weight": NON_NEGATIVE,
        "method_kwargs.var_loss_weight": NON_NEGATIVE,
        "method_kwargs.cov_loss_weight": NON_NEGATIVE,
    },
    "dino": {
        **MOMENTUM,
        **PROJECTOR,
        "method_kwargs.num_prototypes": COUNT,
        "method_kwargs.clip_grad": NON_NEGATIVE,
        "method_kwargs.freeze_last_layer": NON_NEGATIVE,
        "method_kwargs.student_temperature": POSITIVE,
        "method_kwargs.teacher_temperature": POSITIVE,
        "method_kwargs.warmup_teacher_temperature": NON_NEGATIVE,
        "method_kwargs.warmup_teacher_temperature_epochs": NON_NEGATIVE,
    },
    "byol": {**MOMENTUM, **PROJECTOR, "method_kwargs.pred_hidden_dim": COUNT},
    "barlow_twins": {
        **PROJECTOR,
        "method_kwargs.lamb": NON_NEGATIVE,
        "method_kwargs.scale_loss": NON_NEGATIVE,
    },
    "swav": {
        **PROJECTOR,
        "method_kwargs.temperature": POSITIVE,
        "method_kwargs.num_prototypes": COUNT,
        "method_kwargs.sk_iters": COUNT,
        "method_kwargs.sk_epsilon": POSITIVE,
        "method_kwargs.queue_size": COUNT,
        "method_kwargs.epoch_queue_starts": NON_NEGATIVE,
        "method_kwargs.freeze_prototypes_epochs": NON_NEGATIVE,
    },
}
METHOD_KEYS = [(method, key) for method, ranges in METHOD_RANGES.items() for key in ranges]

# What each numeric key accepts, as its one-line message says it.
NUMBER_LINES = {
    "seed": "an integer in [0, 4294967295]",
    "optimizer.batch_size": "an integer >= 1 or null",
    "optimizer.global_batch_size": "an integer >= 1 or null",
    "optimizer.lr": "a number >= 0",
    "optimizer.classifier_lr": "a number >= 0",
    "optimizer.weight_decay": "a number >= 0",
    "optimizer.kwargs.momentum": "a number >= 0",
    "optimizer.kwargs.eta": "a number >= 0",
    "scheduler.warmup_epochs": "a number >= 0",
    "scheduler.warmup_start_lr": "a number >= 0",
    "scheduler.min_lr": "a number >= 0",
    "data.fraction": "a number",
    "data.num_workers": "an integer >= 0",
    "data.crop_size": "an integer >= 1",
    "data.index_seed": "an integer >= 0",
    "data.max_bad_fraction": "a number in [0, 1]",
    "data.min_steps_per_epoch": "an integer >= 1",
    "dali.num_threads": "an integer >= 1",
    "num_nodes": "an integer >= 1",
    "max_epochs": "an integer >= -1 or null",
    "accumulate_grad_batches": "an integer >= 1",
    "checkpoint.frequency": "a number >= 0",
    "checkpoint.every_n_steps": "an integer >= 0",
    "checkpoint.every_minutes": "a number >= 0",
    "auto_resume.max_hours": "a number >= 0",
    "budget.epochs": "a number > 0 or null",
    "knn_eval.k": "an integer >= 1",
    "knn_eval.max_train_features": "an integer >= 1 or null",
    **{key: line for ranges in METHOD_RANGES.values() for key, (_, _, line) in ranges.items()},
}


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: file contents, or None for a folder."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def earlier_run(checkpoints: Path) -> dict[str, bytes | None]:
    """An earlier run's files in ``{checkpoints}/simclr/oldrun00``; returns the tree's snapshot."""
    run = checkpoints / "simclr" / "oldrun00"
    run.mkdir(parents=True)
    (run / "simclr-digits-oldrun00-ep=0-step=2.ckpt").write_bytes(b"weights" * 10)
    (run / "args.json").write_text('{"method": "simclr"}')
    return snapshot(checkpoints)


@pytest.fixture
def fails_cleanly(compose_cfg, tmp_path):
    """``check(overrides, line)``: run_pretrain raises ``line``; the earlier run stays intact."""
    checkpoints = tmp_path / "trained_models"
    before = earlier_run(checkpoints)

    def check(overrides: list[str], line: str, *, pattern: bool = False) -> None:
        with pytest.raises(UserError) as err:
            run_pretrain(compose_cfg(overrides=[*SMALL, *overrides]))
        message = str(err.value)
        assert "\n" not in message
        assert re.fullmatch(line, message) if pattern else message == line, message
        assert snapshot(checkpoints) == before

    return check


def test_every_numeric_key_has_its_line():
    assert set(NUMBER_LINES) == set(PRETRAIN_NUMBERS)


def test_every_method_declares_its_specified_ranges():
    assert set(BUILTIN_METHODS) == set(METHOD_RANGES)
    for method, cls in BUILTIN_METHODS.items():
        assert set(cls.CONFIG_RANGES) == set(METHOD_RANGES[method]), method


def cfg_with(key: str, value: object) -> DictConfig:
    cfg = OmegaConf.create()
    OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


@pytest.mark.parametrize(("method", "key"), METHOD_KEYS)
def test_a_method_key_just_outside_its_range_is_refused(method, key):
    outside, _, line = METHOD_RANGES[method][key]
    for rules in (PRETRAIN_NUMBERS, BUILTIN_METHODS[method].CONFIG_RANGES):
        for value in outside:
            with pytest.raises(UserError) as err:
                check_numbers(cfg_with(key, value), rules)
            assert str(err.value) == f"{key}={value!r} must be {line}"


@pytest.mark.parametrize(("method", "key"), METHOD_KEYS)
def test_a_method_key_inside_its_range_is_accepted(method, key):
    _, inside, _ = METHOD_RANGES[method][key]
    for rules in (PRETRAIN_NUMBERS, BUILTIN_METHODS[method].CONFIG_RANGES):
        for value in inside:
            check_numbers(cfg_with(key, value), rules)


def test_unknown_key(fails_cleanly):
    fails_cleanly(
        ["+seeed=3"],
        "unknown top-level key 'seeed' (did you mean 'seed'?); nothing reads it. The keys are "
        "solo-learn's, the Trainer's and this project's, see yaml_configs/simclr_div.yaml",
    )


@pytest.mark.parametrize("key", sorted(NUMBER_LINES))
def test_wrong_type_of_a_numeric_key(fails_cleanly, key):
    fails_cleanly([f"++{key}=abc"], f"{key}='abc' must be {NUMBER_LINES[key]}")


def test_wrong_type_of_devices(fails_cleanly):
    fails_cleanly(
        ["devices=abc"],
        "Lightning rejects accelerator=cpu devices='abc' num_nodes=1 strategy=auto: `devices` "
        "selected with `CPUAccelerator` should be an int > 0.",
    )


def test_fraction_out_of_range(fails_cleanly):
    fails_cleanly(
        ["data.fraction=1.5"], "data.fraction=1.5 must be in (0, 1], or -1 for all images"
    )


def test_budget_below_one_batch(fails_cleanly):
    fails_cleanly(
        ["budget.C=31"], "budget C=31 images is smaller than one global batch of 32 images"
    )


def test_subset_below_one_global_batch(fails_cleanly):
    fails_cleanly(
        ["data.fraction=0.01"],
        "the subset has N=14 images, fewer than one global batch of 32; use a larger fraction "
        "or a smaller optimizer.batch_size",
    )


def test_a_reference_size_of_zero_is_not_unset(fails_cleanly):
    fails_cleanly(["++budget.reference_size=0"], "budget.reference_size must be positive, got 0")


def test_batch_size_zero(fails_cleanly):
    fails_cleanly(
        ["optimizer.batch_size=0"], "optimizer.batch_size=0 must be an integer >= 1 or null"
    )


def test_precision_not_valid(fails_cleanly):
    fails_cleanly(
        ["precision=8-mixed"],
        "precision='8-mixed' is not valid; choose one of transformer-engine, "
        "transformer-engine-float16, 16-true, 16-mixed, bf16-true, bf16-mixed, 32-true, 64-true, "
        "64, 32, 16, bf16",
    )


def test_resume_path_missing(fails_cleanly, tmp_path):
    missing = tmp_path / "nope.ckpt"
    fails_cleanly(
        [f"resume_from_checkpoint={missing}"],
        f"resume_from_checkpoint={missing}: no such file; give a .ckpt written by main_pretrain.py",
    )


def test_resume_path_not_a_checkpoint(fails_cleanly, tmp_path):
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    fails_cleanly(
        [f"resume_from_checkpoint={text}"],
        rf"resume_from_checkpoint={re.escape(str(text))} is not a checkpoint \(\w+: .+\)",
        pattern=True,
    )


def test_resume_path_a_torch_file_but_not_a_training_checkpoint(fails_cleanly, tmp_path):
    weights = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {}}, weights)
    fails_cleanly(
        [f"resume_from_checkpoint={weights}"],
        f"resume_from_checkpoint={weights} is not a Lightning training checkpoint "
        "(no state_dict and loops)",
    )


def test_output_directory_under_a_regular_file(fails_cleanly, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    fails_cleanly(
        [f"checkpoint.dir={blocker / 'models'}"],
        f"checkpoint.dir: {blocker} is a file, so {blocker / 'models' / 'simclr'} cannot be "
        "created; give a folder",
    )
    assert blocker.read_text() == "x"


@pytest.fixture
def mount_tmpfs(tmp_path):
    """``mount(options) -> folder``: a fresh tmpfs (we are root), unmounted afterwards."""
    mounted: list[Path] = []

    def mount(options: str, prepare=None) -> Path:
        folder = tmp_path / f"mnt{len(mounted)}"
        folder.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=True)


def test_output_directory_read_only(compose_cfg, mount_tmpfs):
    folder = mount_tmpfs("size=1m")
    before = earlier_run(folder)
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    with pytest.raises(UserError) as err:
        run_pretrain(compose_cfg(overrides=[*SMALL, f"checkpoint.dir={folder}"]))
    assert str(err.value) == (
        f"checkpoint.dir: cannot write in {folder / 'simclr'} (Read-only file system); give a "
        "writable folder"
    )
    assert snapshot(folder) == before


def test_output_directory_full(compose_cfg, mount_tmpfs):
    folder = mount_tmpfs("size=64k")
    before = earlier_run(folder)
    with pytest.raises(UserError) as err:
        run_pretrain(compose_cfg(overrides=[*SMALL, f"checkpoint.dir={folder}"]))
    assert re.fullmatch(
        rf"checkpoint\.dir: {re.escape(str(folder / 'simclr'))} has [\d.]+ KB free, less than two "
        r"checkpoints of ~[\d.]+ MB \([\d,]+ parameters and optimizer state\); free space or give "
        r"another checkpoint\.dir",
        str(err.value),
    ), str(err.value)
    assert snapshot(folder) == before


def test_val_path_is_the_train_split(fails_cleanly, digits_indexes):
    train = digits_indexes["train"]
    fails_cleanly(
        [f"data.val_path={train}"],
        f"data.val_path={train} is the training split data.train_path; give the held-out split, "
        "or data.val_path=null to skip validation",
    )


def test_val_path_is_a_copy_of_the_train_split(fails_cleanly, digits_indexes, tmp_path):
    copy = tmp_path / "copy.h5"
    copy.write_bytes(digits_indexes["train"].read_bytes())
    fails_cleanly(
        [f"data.val_path={copy}"],
        rf"data\.val_path={re.escape(str(copy))} holds the same entries as data\.train_path "
        r"\(index fingerprint [0-9a-f]{12}\); give the held-out split",
        pattern=True,
    )


def run_entry(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return zygote.run(
        [sys.executable, str(REPO / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_main_pretrain_unknown_key_is_one_line_and_exit_2(tmp_path, digits_indexes):
    checkpoints = tmp_path / "trained_models"
    before = earlier_run(checkpoints)
    proc = run_entry(
        "main_pretrain.py",
        [
            "--config-name",
            "simclr_div",
            f"data.train_path={digits_indexes['train']}",
            f"checkpoint.dir={checkpoints}",
            "+foo=1",
        ],
        tmp_path,
    )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert errors == [
        "error: unknown top-level key 'foo'; nothing reads it. The "
        "keys are solo-learn's, the Trainer's and this project's, see yaml_configs/simclr_div.yaml"
    ]
    assert snapshot(checkpoints) == before


# The linear entry point: the kinds that apply to it.

LINEAR_LINES = {
    "seed": "an integer in [0, 4294967295]",
    "optimizer.batch_size": "an integer",
    "optimizer.lr": "a number >= 0 or null",
    "optimizer.weight_decay": "a number >= 0 or null",
    "optimizer.kwargs.momentum": "a number >= 0",
    "scheduler.warmup_epochs": "a number >= 0",
    "scheduler.warmup_start_lr": "a number >= 0",
    "scheduler.min_lr": "a number >= 0",
    "data.label_fraction": "a number",
    "data.train_views": "an integer or null",
    "data.num_workers": "an integer >= 0",
    "label_smoothing": "a number",
    "max_epochs": "an integer",
    "num_nodes": "an integer >= 1",
    "accumulate_grad_batches": "an integer >= 1",
    "checkpoint.frequency": "a number >= 0",
    "auto_resume.max_hours": "a number >= 0",
}


@pytest.fixture
def linear_fails(linear_cfg_for, tmp_path):
    """``check(overrides, line)``: run_linear raises exactly ``line`` and writes no results."""
    results = tmp_path / "results.jsonl"
    results.write_text('{"accuracy": 1.0}\n')

    def check(overrides: list[str], line: str) -> None:
        with pytest.raises(UserError) as err:
            run_linear(linear_cfg_for([f"results={results}", *overrides]))
        assert str(err.value) == line
        assert results.read_text() == '{"accuracy": 1.0}\n'

    return check


@pytest.fixture
def linear_cfg_for(tmp_path):
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONFIG_DIR

    checkpoint = tmp_path / "run" / "simclr-digits-abc-ep=1.ckpt"
    checkpoint.parent.mkdir()
    torch.save({"state_dict": {}, "epoch": 1}, checkpoint)

    def make(overrides: list[str]):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
            return compose(
                config_name="linear_div",
                overrides=[f"pretrained_feature_extractor='{checkpoint}'", *overrides],
            )

    return make


def test_every_linear_numeric_key_has_its_line():
    assert set(LINEAR_LINES) == set(LINEAR_NUMBERS)


@pytest.mark.parametrize("key", sorted(LINEAR_LINES))
def test_linear_wrong_type_of_a_numeric_key(linear_fails, key):
    linear_fails([f"++{key}=abc"], f"{key}='abc' must be {LINEAR_LINES[key]}")


def test_linear_unknown_key(linear_fails):
    linear_fails(
        ["+label_fractoin=0.1"],
        "unknown top-level key 'label_fractoin' (did you mean 'label_smoothing'?); nothing reads "
        "it. The keys are solo-learn's, the Trainer's and this project's, see "
        "yaml_configs/linear_div.yaml",
    )


def test_linear_label_fraction_out_of_range(linear_fails):
    linear_fails(
        ["data.label_fraction=1.5"],
        "data.label_fraction=1.5 must be in (0, 1], e.g. 0.05, 0.1, 0.5 or 1",
    )


def test_linear_missing_checkpoint(linear_fails, tmp_path):
    missing = tmp_path / "gone.ckpt"
    linear_fails(
        [f"pretrained_feature_extractor='{missing}'"], f"checkpoint {missing} does not exist"
    )


def test_main_linear_missing_checkpoint_is_one_line_and_exit_2(tmp_path):
    missing = tmp_path / "gone.ckpt"
    proc = run_entry(
        "main_linear.py",
        ["--config-name", "linear_div", f"pretrained_feature_extractor='{missing}'"],
        tmp_path,
    )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert errors == [f"error: checkpoint {missing} does not exist"]
    assert not (tmp_path / "results").exists()
