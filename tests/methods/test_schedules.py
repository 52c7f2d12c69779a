# SPDX-License-Identifier: MIT
"""Epoch-counted keys of DINO and SwAV become optimizer steps and switch behaviour there."""

from __future__ import annotations

import pytest
import torch

from solo_diversity.methods import DINO, SwAV
from tests.methods.method_helpers import fit, method_cfg, two_crop_batch

DINO_KEYS = [
    "method_kwargs.warmup_teacher_temperature_epochs=3",
    "method_kwargs.freeze_last_layer=2",
]
SWAV_KEYS = ["method_kwargs.epoch_queue_starts=3", "method_kwargs.freeze_prototypes_epochs=2"]


@pytest.mark.parametrize(
    ("cls", "overrides", "keys"),
    [
        (DINO, DINO_KEYS, ("dino_teacher_temp_warmup_steps", "dino_freeze_last_layer_steps")),
        (SwAV, SWAV_KEYS, ("swav_queue_start_step", "swav_freeze_prototypes_steps")),
    ],
)
@pytest.mark.parametrize("reading", ["reference", "subset"])
def test_epoch_keys_convert_per_reading(compose_cfg, cls, overrides, keys, reading) -> None:
    """reference: the same image position for every fraction; subset: epochs of the subset."""
    name = cls.__name__.lower()
    positions = {}
    for fraction in (0.1, 1.0):
        # C = 10 reference epochs of N_ref = 1000 images, batch 8 -> 1250 steps
        cfg = method_cfg(
            compose_cfg,
            name,
            [*overrides, "budget.C=1e4", f"++budget.epoch_keys={reading}"],
            dataset_size=1000,
            subset_size=int(1000 * fraction),
        )
        from solo_diversity.methods.settings import budget_plan_of

        plan = budget_plan_of(cfg)
        steps = cls.converted_schedules(cfg, plan)
        positions[fraction] = {k: plan.images_at_step(steps[k]) for k in keys}
        assert "warmup_steps" in steps
    # 3 and 2 epochs of 1000 images -> 3000 and 2000 images on the full set, in both readings
    assert sorted(positions[1.0].values()) == [2000, 3000]
    if reading == "reference":
        assert positions[0.1] == positions[1.0]
    else:  # 3 and 2 epochs of the 100-image subset (12 steps of 8 an epoch, drop_last)
        assert sorted(positions[0.1].values()) == [2 * 12 * 8, 3 * 12 * 8]


def test_dino_teacher_temperature_switches_at_the_converted_step(build_builtin_method) -> None:
    model = build_builtin_method("dino", DINO_KEYS)  # C=800, batch 8 -> 100 steps, E_ref = 0.8
    w = model.warmup_teacher_temperature_steps
    assert w == 100  # 3 reference epochs exceed the budget: the warmup is clamped to S
    model = build_builtin_method(
        "dino",
        [
            "method_kwargs.warmup_teacher_temperature_epochs=0.2",
            "method_kwargs.freeze_last_layer=0.08",
        ],
    )
    assert model.warmup_teacher_temperature_steps == 25
    assert model.teacher_temperature_at(0) == 0.04
    assert model.teacher_temperature_at(24) < 0.07
    assert model.teacher_temperature_at(25) == 0.07
    assert model.freeze_last_layer_steps == 10


def _grad_log(attr: str):
    import lightning.pytorch as pl

    seen: list[tuple[int, bool]] = []

    class Record(pl.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            module = pl_module
            for part in attr.split("."):
                module = getattr(module, part)
            seen.append((trainer.global_step, module.weight_v.grad is not None))

    return seen, Record()


def test_dino_last_layer_is_frozen_until_the_converted_step(build_builtin_method) -> None:
    model = build_builtin_method("dino", ["method_kwargs.freeze_last_layer=0.016"])  # 2 steps
    assert model.freeze_last_layer_steps == 2
    seen, cb = _grad_log("head.last_layer")
    fit(model, 4, [cb])
    assert seen == [(0, False), (1, False), (2, True), (3, True)]


def test_swav_prototypes_frozen_and_queue_start_at_the_converted_steps(
    build_builtin_method,
) -> None:
    model = build_builtin_method(
        "swav",
        ["method_kwargs.freeze_prototypes_epochs=0.016", "method_kwargs.epoch_queue_starts=0.024"],
    )
    assert (model.freeze_prototypes_steps, model.queue_start_step) == (2, 3)
    seen, cb = _grad_log("prototypes")
    fit(model, 4, [cb])
    assert seen == [(0, False), (1, False), (2, True), (3, True)]
    assert [model.queue_active(s) for s in range(5)] == [False, False, False, True, True]
    # the queue (filled by the fit) changes the codes exactly from the start step on
    preds = model(two_crop_batch()[1][0])["p"].detach()
    before = model.get_assignments([preds], 2)[0]
    after = model.get_assignments([preds], 3)[0]
    from solo_diversity.methods.losses import sinkhorn_codes

    torch.testing.assert_close(before, sinkhorn_codes(preds, epsilon=0.05))
    queue_scores = model.prototypes(model.queue[0])
    torch.testing.assert_close(after, sinkhorn_codes(torch.cat([preds, queue_scores]))[:8])
    assert not torch.allclose(before, after)
