# SPDX-License-Identifier: MIT
"""The one line a run prints when a signal stops it, for every case the e2e tests do not reach."""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from solo_diversity.run.interrupt import TrainingInterrupted, resume_hint, signal_label, stop_line

CKPT = Path("runs/simclr/abc/simclr-abc-ep=1-step=13.ckpt")


def test_exit_status_is_the_shells_for_the_signal():
    assert TrainingInterrupted(signal.SIGINT).code == 130
    assert TrainingInterrupted(signal.SIGTERM).code == 143
    assert isinstance(TrainingInterrupted(signal.SIGTERM), SystemExit)


def test_labels_name_the_signal():
    assert signal_label(signal.SIGINT) == "SIGINT (Ctrl-C)"
    assert signal_label(signal.SIGTERM) == "SIGTERM"
    assert signal_label(signal.SIGUSR1, requeue=True) == "SLURM's requeue signal SIGUSR1"


def test_a_requeued_job_is_told_whether_it_will_resume():
    label = signal_label(signal.SIGUSR1, requeue=True)
    done = (True, "requeued SLURM job 4242")
    assert stop_line(label, 13, CKPT, done, auto_resume=True) == (
        f"interrupted by {label} at step 13: saved {CKPT}; requeued SLURM job 4242, which "
        "resumes from it (auto_resume.enabled=true)"
    )
    assert stop_line(label, 13, CKPT, done, auto_resume=False) == (
        f"interrupted by {label} at step 13: saved {CKPT}; requeued SLURM job 4242, which starts "
        "over: its command needs auto_resume.enabled=true to resume from it"
    )


def test_without_checkpointing_the_line_says_nothing_was_saved():
    assert stop_line("SIGTERM", 7, None) == (
        "interrupted by SIGTERM at step 7: nothing saved (checkpoint.enabled=false)"
    )


NAMES = [
    "runs/simclr/abc/simclr-abc-ep=1-step=13.ckpt",  # every checkpoint name holds "="
    "/scratch/my runs/a b/x-ep=0.ckpt",
    "/scratch/it's/x.ckpt",
    '/scratch/say "hi"/x.ckpt',
    "/scratch/both'\"/x.ckpt",
    "/scratch/$HOME/${oc.env:HOME}/x.ckpt",
    "/scratch/back\\slash\\/x\\",
]


@pytest.mark.parametrize("with_key", [True, False], ids=["key-in-config", "solo-learn-yaml"])
def test_the_resume_hint_works_as_pasted_into_a_shell(tmp_path, with_key):
    (tmp_path / "run.yaml").write_text("resume_from_checkpoint: null\n" if with_key else "a: 1\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.2"):
        for name in NAMES:
            head, pasted = resume_hint(Path(name)).split(" or ", 1)
            assert head == "auto_resume.enabled=true"
            (word,) = shlex.split(pasted)  # what bash passes on
            cfg = compose(config_name="run", overrides=[word])
            assert cfg.resume_from_checkpoint == name, pasted
