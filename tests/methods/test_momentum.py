# SPDX-License-Identifier: MIT
"""The EMA teacher: copied from the student, gradient-free, moved exactly by the cosine tau rule."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from solo_diversity.budget.schedules import cosine_tau
from solo_diversity.methods.momentum import momentum_tau
from tests.methods.method_helpers import fit, two_crop_batch

MOMENTUM = ["byol", "dino", "mocov3"]


def _teacher_state(model) -> list[torch.Tensor]:
    return [p.detach().clone() for _, t in model.momentum_pairs for p in t.parameters()]


@pytest.mark.parametrize("name", MOMENTUM)
def test_teacher_starts_as_student_and_gets_no_gradient(build_builtin_method, name: str) -> None:
    model = build_builtin_method(name)
    for student, teacher in model.momentum_pairs:
        for ps, pt in zip(student.parameters(), teacher.parameters(), strict=True):
            assert torch.equal(ps, pt)
            assert not pt.requires_grad
    model.training_step(two_crop_batch(), 0).backward()
    for _, teacher in model.momentum_pairs:
        assert all(p.grad is None for p in teacher.parameters())
    assert model.backbone.features[0].weight.grad is not None


@pytest.mark.parametrize("name", MOMENTUM)
def test_teacher_moves_by_the_tau_rule(build_builtin_method, name: str) -> None:
    model = build_builtin_method(name, ["momentum.base_tau=0.9", "momentum.final_tau=1.0"])
    with torch.no_grad():
        for student, _ in model.momentum_pairs:
            for p in student.parameters():
                p.add_(torch.randn_like(p))
    before = _teacher_state(model)
    students = [p.detach().clone() for s, _ in model.momentum_pairs for p in s.parameters()]
    steps = model.plan.steps
    tau = model.momentum_update(7)
    assert tau == cosine_tau(6, steps, 0.9, 1.0)
    for old, new, s in zip(before, _teacher_state(model), students, strict=True):
        torch.testing.assert_close(new, tau * old + (1 - tau) * s)


def test_tau_schedule_is_base_at_the_first_update_and_final_at_the_end() -> None:
    assert momentum_tau(1, 100, 0.99, 1.0) == 0.99
    assert momentum_tau(101, 100, 0.99, 1.0) == 1.0
    assert momentum_tau(51, 100, 0.99, 1.0) == pytest.approx(0.995)


def test_trainer_updates_the_teacher_once_per_optimizer_step(build_builtin_method) -> None:
    model = build_builtin_method("byol", ["momentum.base_tau=0.5"])
    taus: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            taus.append(pl_module.cur_tau)  # tau of the update after the previous step

    fit(model, 3, [Record()])
    steps = model.plan.steps
    assert taus[0] == 0.5
    assert [*taus[1:], model.cur_tau] == [momentum_tau(k, steps, 0.5, 1.0) for k in (1, 2, 3)]
    assert model.last_step == 3
