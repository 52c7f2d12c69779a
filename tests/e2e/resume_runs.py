# SPDX-License-Identifier: MIT
"""The exact-resume children and how the e2e tests stop, resume and compare them.

A child is this file run as a module (``python -m tests.e2e.resume_runs <overrides>``): hydra
composes ``simclr_div`` from the shipped configs exactly as ``main_pretrain.py`` does and calls
``run_pretrain`` with one extra callback, :class:`PauseAt`, which prints ``PAUSED`` and waits at
the step the parent chose, so that the parent's SIGKILL or other signal lands at that step and
nowhere else. The run's own per-image visit counts (``visits.npz`` beside the ledger) are compared.
This module imports neither pytest nor the test modules, so that each child starts quickly.
"""

from __future__ import annotations

import json
import os
import random
import re
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
import torch

from solo_diversity.run.checkpoint_files import verify
from tests import zygote

REPO = Path(__file__).resolve().parents[2]  # as tests.conftest's, without importing pytest
CONFIG_DIR = REPO / "yaml_configs"


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


def child() -> None:
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


def child_command(digits_indexes: dict[str, Path], out: Path, workers: int) -> list[str]:
    """The child's command line: the test run on the digits, its checkpoints under ``out``."""
    return [
        sys.executable,
        "-m",
        "tests.e2e.resume_runs",
        f"data.train_path={digits_indexes['train']}",
        f"checkpoint.dir={out / 'trained_models'}",
        f"data.num_workers={workers}",
        *OVERRIDES,
    ]


def child_env(out: Path, pause: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: unbuffered, and paused at ``pause`` (None: never) if given."""
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
        cmd: the child's command (:func:`child_command`).
        out: the run's folder.
        env: extra environment variables for the child.
    """
    proc = zygote.run(
        cmd, cwd=REPO, env=child_env(out, None, env), capture_output=True, text=True, timeout=900
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
        cmd: the child's command (:func:`child_command`).
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
        proc = zygote.popen(
            cmd,
            cwd=REPO,
            env=child_env(out, pause, env),
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


def kill_points(seed: int) -> list[str]:
    """Seeded kill points: between two checkpoints, the resume's start-up, mid-step in epoch 1
    (a batch in flight), and right after the checkpoint that closes epoch 1 (step 24)."""
    rng = random.Random(seed)
    between = rng.choice([s for s in range(EVERY + 1, 12) if s % EVERY])
    mid = rng.randrange(13, 23)
    return [f"end:{between}", "start:0", f"mid-step:{mid}", "end:24"]


LINE = re.compile(
    r"interrupted by (?P<label>.+?) at step (?P<step>\d+): saved (?P<path>.+?\.ckpt); (?P<rest>.*)"
)


def one_line(stopped: Stopped) -> re.Match:
    """The single ``interrupted ...`` line on stderr, and no traceback."""
    lines = [line for line in stopped.stderr.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1, stopped.stdout[-2000:] + stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr + stopped.stdout
    match = LINE.fullmatch(lines[0])
    assert match, lines[0]
    return match


def check_saved(match: re.Match, step: int, label: str, global_batch: int = 32) -> Path:
    """The line names ``step`` and ``label``, and its checkpoint holds exactly ``step`` steps."""
    path = Path(match["path"])
    assert (match["label"], int(match["step"])) == (label, step)
    assert path.name.endswith(f"-step={step}.ckpt") and verify(path) is None
    stored = torch.load(path, map_location="cpu", weights_only=False)
    assert stored["global_step"] == step
    assert stored["budget_ledger"]["steps"] == step
    assert stored["budget_ledger"]["images_seen"] == global_batch * step
    assert int(stored["callbacks"]["VisitLedger"]["counts"].sum()) == global_batch * step
    return path


def signal_points(seed: int) -> tuple[int, int]:
    """A step between two checkpoints in epoch 0, and a step of epoch 1 to signal inside."""
    rng = random.Random(seed)
    between = rng.choice([s for s in range(EVERY + 1, 12) if s % EVERY])
    return between, rng.randrange(13, 22)


if __name__ == "__main__":
    child()
