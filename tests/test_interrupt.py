# SPDX-License-Identifier: MIT
"""The one line a run prints when a signal stops it, for every case the e2e tests do not reach."""

from __future__ import annotations

import signal
from pathlib import Path

from solo_diversity.interrupt import TrainingInterrupted, signal_label, stop_line

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
