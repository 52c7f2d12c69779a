# SPDX-License-Identifier: MIT
"""Exact resume: SIGKILL pretraining runs at chosen steps, resume, compare bit for bit.

Each child is this file run as a module (``python -m tests.e2e.test_exact_resume <overrides>``):
hydra composes ``simclr_div`` from the shipped configs exactly as ``main_pretrain.py`` does and
calls ``run_pretrain`` with one extra callback, :class:`PauseAt`, which prints ``PAUSED`` and
waits at the step the parent chose, so that the parent's SIGKILL (or another signal,
:mod:`tests.e2e.test_signals`) lands at that step and nowhere else. The run's own per-image
visit counts (``visits.npz`` beside the ledger) are compared.
The kill points come from a seeded RNG.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from tests.conftest import CONFIG_DIR, REPO

PAUSE_ENV = "EXACT_RESUME_PAUSE"  # "<hook>:<step>[:hold]", hook in start | mid-step | end
RELEASE_ENV = "EXACT_RESUME_RELEASE"  # a file whose appearance ends the pause
EVERY = 4  # checkpoint.every_n_steps
STEPS = 30  # budget.C / batch size
# 388 images (fraction 0.27 of 1,438): 12 batches of 32 per epoch, so checkpoints at 12 and 24
# close an epoch and the others (4, 8, 16, 20, 28) fall inside one.
OVERRIDES = [
    "+backbone.kwargs.width=8",
    "optimizer.batch_size=32",
    f"budget.C={32 * STEPS}",
    "data.fraction=0.27",
    "data.min_steps_per_epoch=1",
    "data.val_path=null",
    f"checkpoint.every_n_steps={EVERY}",
    "auto_resume.enabled=true",
    "+enable_progress_bar=false",
]


class PauseAt(pl.Callback):
    """Print ``PAUSED`` and wait (until killed, signalled or released) at one point of training.

    Args:
        hook: ``start`` (the resumed run's start-up, before its first step), ``mid-step`` (batch
            ``step + 1`` fetched and in flight) or ``end`` (after optimizer step ``step`` and the
            checkpointer's save, if one was due).
        step: the optimizer step (ignored for ``start``).
        release: a file whose appearance ends the pause (None: only a kill or a signal ends it).
        hold: keep waiting after a stop signal was received (to send a second one).
    """

    def __init__(
        self, hook: str, step: int, release: Path | None = None, hold: bool = False
    ) -> None:
        self.hook, self.step, self.release, self.hold = hook, step, release, hold

    def _released(self, trainer) -> bool:
        if self.release is not None and self.release.exists():
            return True
        # The run's stop callback records a signal; the pause ends so the run reaches its next
        # step boundary, as it would when the signal lands inside a step.
        return not self.hold and any(getattr(c, "requested", None) for c in trainer.callbacks)

    def _pause(self, trainer) -> None:
        print("PAUSED", flush=True)
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline and not self._released(trainer):
            time.sleep(0.02)

    def on_train_start(self, trainer, pl_module):
        if self.hook == "start":
            self._pause(trainer)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.hook == "mid-step" and trainer.global_step == self.step:
            self._pause(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.hook == "end" and trainer.global_step == self.step:
            self._pause(trainer)


def _child() -> None:
    """The child process: compose the config like main_pretrain.py, add the test's callbacks."""
    import hydra
    from omegaconf import DictConfig

    from solo_diversity.entry import exit_on_user_error
    from solo_diversity.run.pretrain import run_pretrain

    @hydra.main(version_base="1.2", config_path=str(CONFIG_DIR), config_name="simclr_div")
    def main(cfg: DictConfig) -> None:
        callbacks: list[pl.Callback] = []
        if os.environ.get(PAUSE_ENV):
            hook, step, *flags = os.environ[PAUSE_ENV].split(":")
            release = os.environ.get(RELEASE_ENV)
            callbacks.append(
                PauseAt(hook, int(step), Path(release) if release else None, "hold" in flags)
            )
        with exit_on_user_error():
            run_pretrain(cfg, callbacks=callbacks)

    main()


def _command(digits_indexes: dict[str, Path], out: Path, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.e2e.test_exact_resume",
        f"data.train_path={digits_indexes['train']}",
        f"checkpoint.dir={out / 'trained_models'}",
        f"data.num_workers={workers}",
        *OVERRIDES,
    ]


def _env(out: Path, pause: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for key in (PAUSE_ENV, RELEASE_ENV):
        env.pop(key, None)
    if pause:
        env[PAUSE_ENV] = pause
        env[RELEASE_ENV] = str(out / "release")
    env.update(extra or {})
    return env


def run_to_end(cmd: list[str], out: Path, env: dict[str, str] | None = None) -> str:
    """Run a child to completion; returns its stderr (auto-resume's lines go there).

    Args:
        cmd: the child's command (:func:`_command`).
        out: the run's folder.
        env: extra environment variables for the child.
    """
    proc = subprocess.run(
        cmd, cwd=REPO, env=_env(out, None, env), capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stderr


@dataclass
class Stopped:
    """How a child that :func:`kill_at` stopped ended: exit status and its two streams."""

    returncode: int
    stdout: str
    stderr: str


def kill_at(
    cmd: list[str],
    out: Path,
    pause: str,
    sig: signal.Signals | None = signal.SIGKILL,
    env: dict[str, str] | None = None,
    then: signal.Signals | None = None,
    on_pause: Callable[[], None] | None = None,
    group: bool = False,
) -> Stopped:
    """Start a child, wait for it to pause at ``pause``, send it ``sig`` there.

    With SIGKILL the child must die of it. Otherwise (another signal, or none) the child runs on
    to its own exit, which the caller checks.

    Args:
        cmd: the child's command (:func:`_command`).
        out: the run's folder (the pause's release file goes there).
        pause: ``<hook>:<step>[:hold]`` (:class:`PauseAt`).
        sig: the signal to send (None: none).
        env: extra environment variables for the child.
        then: a second signal, sent 0.5 s after the first (use with ``:hold``).
        on_pause: called while the child waits, before it is released.
        group: start the child in a process group of its own and signal the whole group (its
            loader workers and DALI feed processes too), as ``kill -TERM -PGID``, ``timeout``
            and SLURM do.
    """
    release = out / "release"
    release.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=_env(out, pause, env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if sig == signal.SIGKILL else errors,
            text=True,
            start_new_session=group,
        )

        def send(signum: signal.Signals) -> None:
            if group:
                os.killpg(proc.pid, signum)
            else:
                proc.send_signal(signum)

        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.strip() == "PAUSED":
                if sig is not None:
                    send(sig)
                if on_pause is not None:
                    on_pause()
                if then is not None:
                    time.sleep(0.5)
                    send(then)
                release.touch()  # ranks that got no signal (DDP) go on to the step boundary
                break
        if sig != signal.SIGKILL:
            seen.append(proc.stdout.read())  # keep the pipe drained until the child exits
        proc.wait(timeout=300)
        errors.seek(0)
        stderr = errors.read()
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL, "".join(seen[-40:])
    return Stopped(proc.returncode, "".join(seen), stderr)


def final_state(out: Path) -> tuple[dict[str, torch.Tensor], dict, np.ndarray]:
    """(state_dict, ledger.json + final epoch, visit counts) of the finished run under ``out``.

    The final checkpoint is the one without ``-step=`` in its name.
    """
    (ledger,) = (out / "trained_models" / "simclr").glob("*/ledger.json")
    (ckpt,) = [p for p in ledger.parent.glob("*.ckpt") if "-step=" not in p.name]
    stored = torch.load(ckpt, map_location="cpu", weights_only=False)
    with np.load(ledger.parent / "visits.npz") as visits:
        counts = visits["counts"].astype(np.int64)
        assert int(visits["outside"]) == 0
    summary = {**json.loads(ledger.read_text()), "epoch": stored["epoch"], "name": ckpt.name}
    return stored["state_dict"], summary, counts


def max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel())


_REFERENCES: dict[Path, tuple[dict[str, torch.Tensor], dict, np.ndarray]] = {}


@pytest.fixture(scope="module")
def reference(digits_indexes, tmp_path_factory):
    """The uninterrupted run (num_workers=0) that every resumed run must equal.

    Run once per session: the modules that import this fixture share the result.
    """
    key = digits_indexes["train"]
    if key not in _REFERENCES:
        out = tmp_path_factory.mktemp("reference")
        run_to_end(_command(digits_indexes, out, workers=0), out)
        _REFERENCES[key] = final_state(out)
    return _REFERENCES[key]


def kill_points(seed: int) -> list[str]:
    """Seeded kill points: between two checkpoints, the resume's start-up, mid-step in epoch 1
    (a batch in flight), and right after the checkpoint that closes epoch 1 (step 24)."""
    rng = random.Random(seed)
    between = rng.choice([s for s in range(EVERY + 1, 12) if s % EVERY])
    mid = rng.randrange(13, 23)
    return [f"end:{between}", "start:0", f"mid-step:{mid}", "end:24"]


def test_sigkill_at_four_points_then_resume_is_bit_identical(digits_indexes, tmp_path, reference):
    ref_state, ref_ledger, ref_visits = reference
    out = tmp_path / "killed"
    cmd = _command(digits_indexes, out, workers=0)
    points = kill_points(seed=10)
    for point in points:
        kill_at(cmd, out, point)
    run_to_end(cmd, out)
    state, ledger, visits = final_state(out)
    (run_dir,) = (out / "trained_models" / "simclr").glob("*")
    assert sorted(p.name for p in run_dir.glob("*.ckpt*")) == [
        ledger["name"],
        ledger["name"] + ".sha256",
    ]  # each step checkpoint was replaced
    assert max_abs_diff(state, ref_state) == 0.0
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state)
    assert np.array_equal(visits, ref_visits)
    assert ledger["images_seen"] == ref_ledger["images_seen"] == 32 * STEPS
    assert ledger["epoch"] == ref_ledger["epoch"] and "-step=" not in ledger["name"]
    # the kill in the start-up came before that run saved anything: 3 resumes left a trace
    assert ledger["match"] and ledger["resumes"] == len(points) - 1
    # 960 visits over 388 images: 2.47 epochs of 12 * 32 = 384 images each (4 dropped per epoch).
    assert visits.sum() == 960 and set(np.unique(visits)) <= {0, 1, 2, 3}


def test_two_workers_resume_equals_the_single_process_run(digits_indexes, tmp_path, reference):
    ref_state, _, ref_visits = reference
    out = tmp_path / "workers"
    cmd = _command(digits_indexes, out, workers=2)
    step = random.Random(11).choice([s for s in range(13, STEPS) if s % EVERY])
    kill_at(cmd, out, f"end:{step}")
    run_to_end(cmd, out)
    state, ledger, visits = final_state(out)
    assert max_abs_diff(state, ref_state) == 0.0
    assert np.array_equal(visits, ref_visits) and ledger["match"]


def test_truncated_newest_checkpoint_is_skipped_with_one_line(digits_indexes, tmp_path, reference):
    ref_state, _, ref_visits = reference
    out = tmp_path / "truncated"
    cmd = [*_command(digits_indexes, out, workers=0), "checkpoint.keep_prev=true"]
    kill_at(cmd, out, "end:10")  # checkpoints at steps 4 and 8 are kept
    (run_dir,) = (out / "trained_models" / "simclr").glob("*")
    newest = next(run_dir.glob("*-step=8.ckpt"))
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a full disk's leftover
    actual, recorded = _sha(newest), (run_dir / (newest.name + ".sha256")).read_text()
    stderr = run_to_end(cmd, out)  # the resumed run saves step 8 again, intact
    skipped = [line for line in stderr.splitlines() if line.startswith("auto-resume: skipping")]
    assert skipped == [
        f"auto-resume: skipping {newest}: its sha256 {actual[:12]} differs from "
        f"{newest.name}.sha256 ({recorded[:12]}): the file is truncated or corrupt"
    ]
    state, ledger, visits = final_state(out)
    assert max_abs_diff(state, ref_state) == 0.0 and np.array_equal(visits, ref_visits)
    assert ledger["resumes"] == 1


def _sha(path: Path) -> str:
    from solo_diversity.run.checkpoint_files import file_sha256

    return file_sha256(path)


if __name__ == "__main__":
    _child()
