# SPDX-License-Identifier: MIT
"""A training step waits for nothing: no host syncs per step, and the final state saved once.

On a GPU, ``.item()``, ``.cpu()``, ``.tolist()``, ``.numpy()`` or ``bool``/``int``/``float`` of a
tensor makes the host wait for every kernel queued before it. The CPU cannot show the wait, so
:class:`SyncCounter` counts the calls themselves during a tiny real run: every such call made
while a batch is in the training step (from ``on_train_batch_start`` to ``on_train_batch_end``)
from the second batch on, by the first frame of this package that made it.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

import solo_diversity
from solo_diversity.run.pretrain import run_pretrain
from solo_diversity.run.visits import entries_on_device, entry_of

#: Tensor methods that copy a value to the host, waiting for the device.
SYNCING = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")
PACKAGE = Path(solo_diversity.__file__).parent
#: Files whose syncs this test leaves out: none (callbacks, methods, LARS and the bad-image guard
#: all keep their per-step work on the device; a new sync anywhere in the package fails).
NOT_COUNTED: tuple[str, ...] = ()
#: 10 optimizer steps of 32 images, a 4-channel ResNet, no validation.
TINY = ["optimizer.batch_size=32", "budget.C=320", "+backbone.kwargs.width=4", "data.val_path=null"]


def _caller() -> str:
    """``path:function`` of the innermost frame of this package below the patched method."""
    frame = sys._getframe(2)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.is_relative_to(PACKAGE):
            return f"{path.relative_to(PACKAGE)}:{frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return "outside the package"


class SyncCounter(pl.Callback):
    """Count host-syncing tensor calls inside the training steps of batches 2 and later.

    Args:
        monkeypatch: where the wrapped methods are installed (undone after the test).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
        self.trainer: pl.Trainer | None = None

    def _in_step(self) -> bool:
        if self.trainer is None:
            return False
        total = self.trainer.fit_loop.epoch_loop.batch_progress.total
        return total.ready >= 2 and total.ready > total.completed

    def _wrap(self, name: str) -> Any:
        original = getattr(torch.Tensor, name)

        def counted(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if self._in_step():
                self.calls[(_caller(), name)] += 1
            return original(tensor, *args, **kwargs)

        return counted

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.trainer = trainer
        for name in SYNCING:
            self.monkeypatch.setattr(torch.Tensor, name, self._wrap(name))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.trainer = None  # the end-of-training saves sync, once


class SaveRecorder(pl.Callback):
    """Record ``(global_step, file name)`` of every checkpoint the trainer writes."""

    def __init__(self) -> None:
        self.saved: list[tuple[int, str]] = []

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        save = trainer.save_checkpoint

        def recorded(path: Any, *args: Any, **kwargs: Any) -> None:
            self.saved.append((trainer.global_step, Path(path).name))
            save(path, *args, **kwargs)

        trainer.save_checkpoint = recorded  # type: ignore[method-assign]


def test_callbacks_make_no_host_sync_in_a_training_step(compose_cfg, monkeypatch):
    counter = SyncCounter(monkeypatch)
    result = run_pretrain(compose_cfg(overrides=TINY), callbacks=[counter])
    assert result.ledger["match"] and result.plan.steps == 10
    ours = {key: n for key, n in counter.calls.items() if not key[0].startswith(NOT_COUNTED)}
    assert ours == {}


def test_visit_counts_on_the_device_equal_the_host_mapping():
    rng = np.random.default_rng(0)
    positions = rng.permutation(1000)[:300]
    visited = np.concatenate([positions[rng.integers(0, 300, 200)], [1000, 5000, -1]])
    order = np.argsort(positions, kind="stable")
    entries = entries_on_device(
        torch.from_numpy(positions[order]), torch.from_numpy(order), torch.from_numpy(visited)
    )
    expected, outside = entry_of(positions, visited)
    assert entries[:-3].tolist() == expected.tolist() and outside == 3
    assert entries[-3:].tolist() == [300, 300, 300]  # outside the subset: entry N


def test_the_final_state_is_saved_once(compose_cfg):
    recorder = SaveRecorder()
    cfg = compose_cfg(overrides=[*TINY, "checkpoint.every_n_steps=1"])  # a save due every step
    result = run_pretrain(cfg, callbacks=[recorder])
    assert [step for step, _ in recorder.saved] == list(range(1, 11))  # step 10 once: the final
    assert recorder.saved[-1][1] == result.checkpoint.name + ".tmp"
    assert [p.name for p in result.checkpoint.parent.glob("*.ckpt")] == [result.checkpoint.name]
