# SPDX-License-Identifier: MIT
"""Resume rules users can predict: which settings a resume may change, and what happens otherwise.

Settings that cannot change what a run trains (workers, logging, checkpoint cadence, paths) never
fork a new run. Any other difference refuses an explicit ``resume_from_checkpoint`` with one line
naming it (old -> new), or makes auto-resume start a new run that says why in one line. A
checkpoint of another method is refused before training; one of a finished run exits 0 saying
where the run's final checkpoint is. The keys the README documents need no ``+``.
"""

from __future__ import annotations

import json
import re
import shutil
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from solo_diversity.config.overrides import budget_overrides
from solo_diversity.config.pretrain import PRETRAIN_DEFAULTS, resolve_pretrain_cfg
from solo_diversity.config.run_config import config_record
from solo_diversity.errors import UserError
from solo_diversity.run import checkpoint_files as files
from solo_diversity.run.identity import setting_changes
from solo_diversity.run.pretrain import run_pretrain
from solo_diversity.run.resume import AutoResume, auto_resume
from tests import zygote
from tests.conftest import CONFIG_DIR, REPO, TINY_RUN
from tests.e2e.in_process import StopAt, snapshot
from tests.e2e.solo_yamls import write_suite

SMALL = [
    "data.val_path=null",
    "optimizer.batch_size=32",
    "budget.C=384",  # 12 steps of 32 images
    "+backbone.kwargs.width=8",
]
TAIL = (
    "changes what the run trains; resume with the checkpoint's settings (only workers, logging, "
    "checkpointing and paths may change), or start a new run"
)
NEUTRAL = {  # one key per kind: loader, logging, wandb, cadence, auto-resume, paths, DALI
    "data": {"num_workers": 2, "train_path": "/elsewhere/train.h5", "index_cache": "/c"},
    "loggers": ["csv", "tensorboard"],
    "wandb": {"enabled": True, "project": "p", "offline": True},
    "checkpoint": {"every_n_steps": 7, "dir": "/other", "keep_prev": True},
    "auto_resume": {"enabled": True, "max_hours": 2},
    "dali": {"num_threads": 8},
    "log_every_n_steps": 1,
    "resume_from_checkpoint": "/x/a.ckpt",
}


def _config(**changes):
    """A small resolved config, as args.json holds it, with ``changes`` merged in."""
    base = {
        "name": "simclr-digits",
        "method": "simclr",
        "data": {"num_workers": 0, "train_path": "/t.h5", "fraction": -1},
        "optimizer": {"name": "lars", "lr": 0.4},
        "augmentations": [{"crop_size": 8}],
        "seed": 5,
    }
    return OmegaConf.to_container(OmegaConf.merge(base, changes))


def test_settings_that_cannot_change_training_are_no_difference():
    assert setting_changes(_config(), _config(**NEUTRAL)) == []


def test_each_other_difference_is_named_old_to_new_in_config_order():
    saved = _config(precision="16-mixed")
    current = _config(seed=6, optimizer={"lr": 0.1}, augmentations=[{"crop_size": 32}])
    assert setting_changes(saved, current) == [
        "optimizer.lr 0.4 -> 0.1",
        "augmentations.0.crop_size 8 -> 32",
        "seed 5 -> 6",
        "precision 16-mixed -> (unset)",
    ]


def _fake_run(logdir, version, args, *, finished=False):
    """A run folder with ``args.json`` and one intact (checksummed) checkpoint."""
    run = logdir / version
    run.mkdir(parents=True)
    (run / "args.json").write_text(json.dumps(args))
    ckpt = run / f"x-{version}-ep=0-step=4.ckpt"
    torch.save({"state_dict": {}, "global_step": 4}, files.temporary_path(ckpt))
    files.publish(files.temporary_path(ckpt), ckpt)
    if finished:
        (run / "ledger.json").write_text("{}")
    return ckpt


def test_auto_resume_resumes_across_worker_and_logging_changes(tmp_path):
    ckpt = _fake_run(tmp_path, "aaaa", _config())
    record = config_record(OmegaConf.create(_config(**NEUTRAL)))
    assert auto_resume(tmp_path, record) == AutoResume(ckpt)


def test_auto_resume_declines_a_run_with_another_lr_and_says_why(tmp_path, capsys):
    _fake_run(tmp_path, "aaaa", _config())
    _fake_run(tmp_path, "done", _config(optimizer={"lr": 0.1}), finished=True)
    _fake_run(tmp_path, "other", _config(name="byol-digits", optimizer={"lr": 0.1}))
    found = auto_resume(tmp_path, config_record(OmegaConf.create(_config(optimizer={"lr": 0.1}))))
    assert found.checkpoint is None  # the finished run and another experiment are not candidates
    found.announce("bbbb")
    assert capsys.readouterr().err.splitlines() == [
        f"auto-resume: starting a new run bbbb: the unfinished run {tmp_path / 'aaaa'} differs: "
        "optimizer.lr 0.4 -> 0.1"
    ]


@pytest.fixture(scope="module")
def interrupted_template(digits_indexes, tmp_path_factory):
    """The run of :func:`interrupted`, stopped once for the module; returns its checkpoint.dir."""
    models = tmp_path_factory.mktemp("interrupted") / "trained_models"
    overrides = [
        f"data.train_path={digits_indexes['train']}",
        f"checkpoint.dir={models}",
        "data.num_workers=0",
        *TINY_RUN,
        *SMALL,
        "auto_resume.enabled=true",
    ]
    with pytest.raises(SystemExit):
        run_pretrain(_compose(overrides), callbacks=[StopAt(5)])
    return models


@pytest.fixture
def interrupted(interrupted_template, compose_cfg, tmp_path):
    """A 12-step auto-resume run stopped (Ctrl-C) after step 5; returns (make_cfg, run folder).

    A copy of the module's stopped run in this test's ``checkpoint.dir`` (a neutral setting).
    """

    def make(*extra):
        return compose_cfg(overrides=[*SMALL, "auto_resume.enabled=true", *extra])

    shutil.copytree(interrupted_template, tmp_path / "trained_models")
    (args,) = (tmp_path / "trained_models" / "simclr").glob("*/args.json")
    return make, args.parent


def test_auto_resume_continues_with_other_workers_and_loggers(interrupted, capsys):
    make, run = interrupted
    capsys.readouterr()
    result = run_pretrain(make("data.num_workers=2", "++loggers=[]", "checkpoint.every_n_steps=3"))
    assert result.checkpoint.parent == run and result.ledger["resumes"] == 1
    assert result.ledger["match"] and result.ledger["images_per_step_rank0"] == {"32": 12}
    assert "auto-resume: starting a new run" not in capsys.readouterr().err


def test_auto_resume_with_another_seed_starts_a_new_run_in_one_line(interrupted, capsys):
    make, run = interrupted
    before = snapshot(run)
    capsys.readouterr()
    result = run_pretrain(make("seed=6"))
    new = result.checkpoint.parent
    lines = [line for line in capsys.readouterr().err.splitlines() if "auto-resume" in line]
    assert lines == [
        f"auto-resume: starting a new run {new.name}: the unfinished run {run} differs: seed 5 -> 6"
    ]
    assert new != run and result.ledger["resumes"] == 0 and snapshot(run) == before


@pytest.fixture(scope="module")
def finished(digits_indexes, tmp_path_factory):
    """A finished 12-step run with its step checkpoints (4, 8) and its final one kept.

    Returns ``(overrides, result)``; the overrides give the same run again.
    """
    out = tmp_path_factory.mktemp("finished")
    overrides = [
        f"data.train_path={digits_indexes['train']}",
        f"checkpoint.dir={out / 'trained_models'}",
        "data.num_workers=0",
        *TINY_RUN,
        *SMALL,
        "checkpoint.every_n_steps=4",
        "checkpoint.keep_prev=true",
    ]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        result = run_pretrain(compose(config_name="simclr_div", overrides=overrides))
    return overrides, result


def _step(result, step):
    (path,) = result.checkpoint.parent.glob(f"*-step={step}.ckpt")
    return path


def _compose(overrides, name="simclr_div"):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        return compose(config_name=name, overrides=overrides)


def test_an_explicit_resume_with_another_lr_is_refused(finished):
    overrides, result = finished
    step4 = _step(result, 4)
    before = snapshot(step4.parent)
    resume = f"resume_from_checkpoint='{step4}'"
    with pytest.raises(UserError) as err:
        run_pretrain(_compose([*overrides, resume, "optimizer.lr=0.1"]))
    assert str(err.value) == f"cannot resume from {step4}: optimizer.lr 0.4 -> 0.1 {TAIL}"
    assert snapshot(step4.parent) == before  # args.json still says 0.4


def test_a_checkpoint_of_another_method_is_one_line_and_exit_2(finished, tmp_path):
    overrides, result = finished
    step4 = _step(result, 4)
    before = snapshot(step4.parent)
    proc = zygote.run(
        [
            sys.executable,
            str(REPO / "main_pretrain.py"),
            "--config-name",
            "byol_div",
            *overrides,
            f"resume_from_checkpoint='{step4}'",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"error: cannot resume from {re.escape(str(step4))}: method simclr -> byol "
        rf"\(and \d+ more\) {re.escape(TAIL)}",
        last,
    ), last
    assert snapshot(step4.parent) == before


def test_resuming_a_finished_run_says_where_its_checkpoint_is(finished, capsys):
    overrides, result = finished
    final = result.checkpoint
    assert not list(final.parent.glob("*-step=12.ckpt"))  # the last state is written once
    before = snapshot(final.parent)
    capsys.readouterr()
    again = run_pretrain(_compose([*overrides, f"resume_from_checkpoint='{final}'"]))
    lines = capsys.readouterr().err.splitlines()
    assert [line for line in lines if line.startswith("resume_from_checkpoint=")] == [
        f"resume_from_checkpoint={final}: the run is already complete (12 of 12 steps); its "
        f"final checkpoint is {final}; nothing to train"
    ]
    assert again.checkpoint == final and again.ledger == result.ledger
    assert snapshot(final.parent) == before


DOCUMENTED = {  # README keys that needed a "+" before the shipped configs had them
    "seed": 6,
    "resume_from_checkpoint": None,
    "data.index_seed": 1,
    "data.max_bad_fraction": 0.02,
    "data.stratified": True,
    "data.min_steps_per_epoch": 10,
}


def _bare(values):
    return [f"{key}={'null' if v is None else str(v).lower()}" for key, v in values.items()]


@pytest.mark.parametrize(
    "name", ["simclr", "byol", "dino", "swav", "vicreg", "mocov3", "barlow_twins"]
)
def test_documented_keys_need_no_plus_and_keep_their_defaults(name):
    default = resolve_pretrain_cfg(_compose([], f"{name}_div"))
    for key in DOCUMENTED:
        assert OmegaConf.select(default, key) == PRETRAIN_DEFAULTS.get(key), key
    cfg = resolve_pretrain_cfg(_compose(_bare(DOCUMENTED), f"{name}_div"))
    assert {key: OmegaConf.select(cfg, key) for key in DOCUMENTED} == DOCUMENTED


def test_solo_learn_yamls_take_the_same_keys_through_main_pretrain(tmp_path):
    folder = write_suite(tmp_path, "cifar")
    argv = budget_overrides(["budget.C=256", *_bare(DOCUMENTED), "+seed=7"])  # an old "+" too
    with initialize_config_dir(config_dir=str(folder), version_base="1.2"):
        cfg = resolve_pretrain_cfg(compose(config_name="simclr.yaml", overrides=argv))
    assert {key: OmegaConf.select(cfg, key) for key in DOCUMENTED} == {**DOCUMENTED, "seed": 7}
