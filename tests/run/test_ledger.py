# SPDX-License-Identifier: MIT
"""The budget ledger counts its own optimizer steps and images, and saves finished steps only.

Each test fits a real (tiny) Lightning model on the CPU with the ledger attached: 16 samples,
batch 4, so G = 4 and the plan of C = 40 images is 10 optimizer steps.
"""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from solo_diversity.budget.plan import plan_budget
from solo_diversity.run.callbacks import BudgetLedger, LedgerMismatch


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _loader(batch_size: int) -> DataLoader:
    data = torch.arange(48, dtype=torch.float32).reshape(16, 3) / 48
    return DataLoader(TensorDataset(data), batch_size=batch_size)


def _fit(ledger, callbacks=(), ckpt_path=None, batch_size=4, accumulate=1, max_steps=10):
    torch.manual_seed(0)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        accumulate_grad_batches=accumulate,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ledger, *callbacks],
    )
    trainer.fit(_Tiny(), _loader(batch_size), ckpt_path=ckpt_path)
    return trainer


def _plan():
    return plan_budget(40, 16, global_batch=4)


class _SaveAt(pl.Callback):
    def __init__(self, step: int, path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step and not self.path.exists():
            trainer.save_checkpoint(self.path)


def test_an_exact_run_matches_with_its_own_counts(tmp_path):
    ledger = BudgetLedger(_plan(), tmp_path / "ledger.json")
    trainer = _fit(ledger)
    summary = ledger.summary
    assert (summary["images_seen"], summary["optimizer_steps"], summary["match"]) == (40, 10, True)
    assert summary["images_per_step_rank0"] == {"4": 10} and trainer.global_step == 10
    assert (tmp_path / "ledger.json").is_file()


def test_a_wrong_step_count_is_a_mismatch_even_when_the_trainer_step_is_right(tmp_path):
    saved = tmp_path / "step4.ckpt"
    _fit(BudgetLedger(_plan()), [_SaveAt(4, saved)])
    state = torch.load(saved, weights_only=False)
    assert state["callbacks"]["BudgetLedger"]["steps"] == 4
    resumed = BudgetLedger(_plan())
    _fit(resumed, ckpt_path=saved)  # the untampered checkpoint resumes to a match
    assert resumed.summary["match"] and resumed.summary["optimizer_steps"] == 10

    state["callbacks"]["BudgetLedger"]["steps"] = 3  # one step lost from the ledger's count
    tampered = tmp_path / "tampered.ckpt"
    torch.save(state, tampered)
    ledger = BudgetLedger(_plan())
    with pytest.raises(LedgerMismatch) as err:
        _fit(ledger, ckpt_path=tampered)
    assert str(err.value) == (
        "budget ledger mismatch: counted 40 images in 9 optimizer steps, the plan is C_eff=40 "
        "images in 10 steps (the trainer's global step is 10)"
    )
    assert ledger.summary["match"] is False and ledger.summary["optimizer_steps"] == 9


class _Snapshot(pl.Callback):
    """The ledger's checkpoint state at every hook where a checkpoint could be written."""

    def __init__(self, ledger: BudgetLedger) -> None:
        self.ledger, self.states = ledger, []

    def _take(self, trainer, where):
        state = self.ledger.state_dict()
        self.states.append((where, trainer.global_step, state["images_seen"], state["steps"]))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._take(trainer, "in flight")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._take(trainer, "after")


def test_the_saved_state_counts_finished_steps_only_under_accumulation(tmp_path):
    ledger = BudgetLedger(_plan())
    snapshot = _Snapshot(ledger)
    _fit(ledger, [snapshot], batch_size=2, accumulate=2)  # G = 2 x 2: 2 micro-batches a step
    assert ledger.summary["match"] and ledger.summary["images_per_step_rank0"] == {"4": 10}
    # In flight or half-way through an accumulated step, the state holds the finished steps:
    # never the batch being trained (the Ctrl-C LedgerMismatch), never half a step.
    assert all(images == 4 * step == 4 * steps for _, step, images, steps in snapshot.states)
    assert {where for where, *_ in snapshot.states} == {"in flight", "after"}
    assert len(snapshot.states) == 2 * 20  # 20 micro-batches, two snapshots each


def test_image_counts_stay_exact_beyond_float32(tmp_path):
    ledger = BudgetLedger(_plan())
    ledger.load_state_dict({"images_seen": 2**24 + 1, "steps": 0})
    with pytest.raises(LedgerMismatch):
        _fit(ledger)
    assert ledger.summary["images_seen"] == 2**24 + 1 + 40  # float32 would round it to even
    assert ledger.summary["resumes"] == 1
