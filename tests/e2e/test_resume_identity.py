# SPDX-License-Identifier: MIT
"""A resume continues the same run: index, subset, plan and world size equal the checkpoint's."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
from hydra import compose, initialize_config_dir

from solo_diversity.errors import UserError
from solo_diversity.index import build_index, open_index
from solo_diversity.run import checkpoint_files as files
from solo_diversity.run.identity import subset_digest
from solo_diversity.run.pretrain import run_pretrain
from tests.conftest import CONFIG_DIR, TINY_RUN
from tests.e2e.in_process import StopAt, snapshot

TAIL = "resume with the checkpoint's index, data.fraction, budget and devices, or start a new run"


BASE = [
    "data.val_path=null",
    "optimizer.batch_size=32",
    "budget.C=384",
    "+backbone.kwargs.width=8",
    "checkpoint.every_n_steps=4",
    "checkpoint.keep_prev=true",
]


@pytest.fixture(scope="module")
def finished_template(tmp_path_factory):
    """The 12-step run of :func:`finished_run`, trained once for the module.

    Returns its folder: ``own/train.h5`` (its own digits index) and ``trained_models/``.
    """
    root = tmp_path_factory.mktemp("finished")
    train = build_index("digits", root / "own" / "train.h5", split="train", seed=0)
    overrides = [
        f"data.train_path={train}",
        f"checkpoint.dir={root / 'trained_models'}",
        "data.num_workers=0",
        *TINY_RUN,
        *BASE,
    ]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        run_pretrain(compose(config_name="simclr_div", overrides=overrides))
    return root


@pytest.fixture
def finished_run(finished_template, compose_cfg, tmp_path):
    """A 12-step run on its own digits index with step checkpoints at 4 and 8 kept.

    A copy of the module's run (index and checkpoints) under ``tmp_path``, so that each test may
    rebuild the index or write beside the checkpoints: the paths it reads and writes are its own.
    Returns ``(make_cfg, index path, step-4 checkpoint)``.
    """
    for part in ("own", "trained_models"):
        shutil.copytree(finished_template / part, tmp_path / part)
    train = tmp_path / "own" / "train.h5"

    def make(*extra: str):
        return compose_cfg(overrides=[f"data.train_path={train}", *BASE, *extra])

    (step4,) = (tmp_path / "trained_models").glob("simclr/*/*-step=4.ckpt")
    return make, train, step4


def test_a_rebuilt_index_is_refused_with_its_fingerprints(finished_run):
    make, train, step4 = finished_run
    before = open_index(train).fingerprint
    build_index("digits", train, split="train", seed=1)  # another data.index_seed, same file
    after = open_index(train).fingerprint
    files_before = snapshot(step4.parent)
    with pytest.raises(UserError) as err:
        run_pretrain(make(f"resume_from_checkpoint='{step4}'"))
    assert str(err.value) == (
        f"cannot resume from {step4}: the index was rebuilt (fingerprint {before[:12]} -> "
        f"{after[:12]}); {TAIL}"
    )
    assert snapshot(step4.parent) == files_before


def test_another_budget_is_another_plan(finished_run):
    make, _, step4 = finished_run
    files_before = snapshot(step4.parent)
    with pytest.raises(UserError) as err:
        run_pretrain(make(f"resume_from_checkpoint='{step4}'", "budget.C=768"))
    assert str(err.value) == (
        f"cannot resume from {step4}: the budget plan changed (C 384 -> 768, steps 12 -> 24); "
        f"{TAIL}"
    )
    assert snapshot(step4.parent) == files_before


def test_another_subset_and_another_world_size(finished_run):
    make, _, step4 = finished_run
    with pytest.raises(UserError) as err:
        run_pretrain(make(f"resume_from_checkpoint='{step4}'", "data.fraction=0.5", "devices=2"))
    assert str(err.value) == (
        f"cannot resume from {step4}: the subset changed (N=1438 -> 719, positions "
        f"{subset_digest(range(1438))} -> {subset_digest(range(719))}); the budget plan changed "
        "(N 1438 -> 719, global_batch 32 -> 64, steps 12 -> 6); the world size changed (1 -> 2 "
        f"processes); {TAIL}"
    )


def test_a_checkpoint_without_an_identity_still_resumes(finished_run, caplog):
    make, _, step4 = finished_run
    old = step4.with_name("simclr-digits-old-ep=0-step=4.ckpt")
    stored = torch.load(step4, weights_only=False)
    del stored["callbacks"]["RunIdentity"]  # as written before identities were kept
    torch.save(stored, files.temporary_path(old))
    files.publish(files.temporary_path(old), old)
    with caplog.at_level(logging.WARNING, logger="solo_diversity"):
        result = run_pretrain(make(f"resume_from_checkpoint='{old}'"))
    assert result.ledger["images_seen"] == 384 and result.ledger["match"]
    lines = [r.getMessage() for r in caplog.records if "stores no run identity" in r.getMessage()]
    assert lines == [
        f"{old} stores no run identity (written before identities were kept); resuming without "
        "checking its index, subset, plan and world size"
    ]


def test_auto_resume_after_the_index_was_rebuilt_starts_a_new_run(compose_cfg, tmp_path, capsys):
    train = build_index("digits", tmp_path / "own" / "train.h5", split="train", seed=0)
    cfg = compose_cfg(
        overrides=[
            f"data.train_path={train}",
            "data.val_path=null",
            "optimizer.batch_size=32",
            "budget.C=384",
            "+backbone.kwargs.width=8",
            "auto_resume.enabled=true",
        ]
    )
    with pytest.raises(SystemExit):  # Ctrl-C: progress saved at step 5
        run_pretrain(cfg, callbacks=[StopAt(5)])
    (saved,) = (tmp_path / "trained_models" / "simclr").glob("*/*.ckpt")
    files_before = snapshot(saved.parent)
    before = open_index(train).fingerprint
    build_index("digits", train, split="train", seed=1)
    capsys.readouterr()
    result = run_pretrain(cfg)  # auto-resume finds the interrupted run, on another index
    after = open_index(train).fingerprint
    new = result.checkpoint.parent
    lines = [line for line in capsys.readouterr().err.splitlines() if "auto-resume" in line]
    assert lines == [
        f"auto-resume: starting a new run {new.name}: the unfinished run {saved.parent} differs: "
        f"the index was rebuilt (fingerprint {before[:12]} -> {after[:12]})"
    ]
    assert new != saved.parent and result.ledger["resumes"] == 0 and result.ledger["match"]
    assert snapshot(saved.parent) == files_before
