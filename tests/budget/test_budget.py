# SPDX-License-Identifier: MIT
"""Budget arithmetic on the paper's settings and its error messages."""

from __future__ import annotations

import pytest

from solo_diversity.budget.plan import (
    BudgetPlan,
    check_budget_keys,
    check_switches,
    parse_count,
    plan_budget,
)
from solo_diversity.errors import UserError


@pytest.mark.parametrize(
    ("n", "epochs", "diversity"),
    [(5_000, 10_000, 1e-4), (25_000, 2_000, 5e-4), (50_000, 1_000, 1e-3)],
)
def test_cifar100_at_50m_images_matches_the_paper(n, epochs, diversity):
    plan = plan_budget("50e6", n, 256, N_ref=50_000)
    assert plan.epochs == epochs and plan.diversity == pytest.approx(diversity)
    assert plan.steps == 195_312 and plan.C_eff == 195_312 * 256 == 49_999_872
    assert plan.steps_per_epoch == n // 256


def test_imagenet_and_yfcc_at_98m_images():
    imagenet = plan_budget(98e6, 1_281_167, 4096, N_ref=1_281_167)
    yfcc = plan_budget(98e6, 98_170_000, 4096, N_ref=1_281_167)
    assert round(imagenet.epochs, 1) == 76.5 and yfcc.epochs == pytest.approx(98e6 / 98.17e6)
    assert imagenet.steps == yfcc.steps == 23_925


def test_reference_reading_gives_every_fraction_the_same_warmup():
    warmups = {
        plan_budget(50e6, n, 256, N_ref=50_000, epoch_keys="reference").epochs_to_steps(10)
        for n in (5_000, 25_000, 50_000)
    }
    assert warmups == {1953}  # 10 of 1000 reference epochs = 1% of 195,312 steps


@pytest.mark.parametrize(("n", "warmup"), [(5_000, 190), (25_000, 970), (50_000, 1950)])
def test_subset_reading_is_solo_learns_arithmetic(n, warmup):
    # solo-learn: warmup_epochs * estimated_stepping_batches / max_epochs = 10 * (N // 256).
    plan = plan_budget(50e6, n, 256, N_ref=50_000)
    assert plan.epoch_keys == "subset"
    assert plan.epochs_to_steps(10) == warmup == 10 * (n // 256)


@pytest.mark.parametrize(
    ("reading", "queue", "freeze", "dino_freeze"),
    [("subset", 950, 38, 19), ("reference", 9766, 391, 195)],
)
def test_swav_and_dino_switches_at_10_percent_of_cifar100(reading, queue, freeze, dino_freeze):
    plan = plan_budget(50e6, 5_000, 256, N_ref=50_000, epoch_keys=reading)
    assert plan.epochs_to_steps(50) == queue  # SwAV epoch_queue_starts
    assert plan.epochs_to_steps(2) == freeze  # SwAV freeze_prototypes_epochs
    assert plan.epochs_to_steps(1) == dino_freeze  # DINO freeze_last_layer


@pytest.mark.parametrize("reading", ["subset", "reference"])
def test_epoch_at_step_switches_where_epochs_to_steps_says(reading):
    plan = plan_budget(50e6, 5_000, 256, N_ref=50_000, epoch_keys=reading)
    for epochs in (1, 2, 50):
        step = plan.epochs_to_steps(epochs)
        assert plan.epoch_at_step(step) == epochs and plan.epoch_at_step(step - 1) == epochs - 1


def test_schedule_epochs_cover_the_run():
    subset = plan_budget(50e6, 5_000, 256, N_ref=50_000)
    reference = plan_budget(50e6, 5_000, 256, N_ref=50_000, epoch_keys="reference")
    assert subset.schedule_epochs == 10_280  # ceil(195,312 / 19)
    assert reference.schedule_epochs == 1_000


def test_unknown_reading_is_one_line():
    with pytest.raises(UserError, match="budget.epoch_keys='epochs' is not one of subset"):
        plan_budget(50e6, 5_000, 256, epoch_keys="epochs")


def test_switch_past_the_end_is_refused_unless_forced():
    yfcc = plan_budget(98e6, 98_170_000, 4096, N_ref=98_170_000)
    switches = {"warmup_steps": yfcc.epochs_to_steps(10)}
    assert switches["warmup_steps"] == yfcc.steps == 23_925
    with pytest.raises(UserError, match="warmup_steps lands at or past the last of the run"):
        check_switches(switches, yfcc.steps)
    warnings = check_switches(switches, yfcc.steps, allow_late=True)
    assert any("lands at or past" in w for w in warnings)
    assert any("over a quarter" in w for w in warnings)


def test_long_warmup_warns_and_short_one_is_quiet():
    assert check_switches({"warmup_steps": 26}, 100) != []
    assert check_switches({"warmup_steps": 25, "swav_queue_start_step": 99}, 100) == []
    assert check_switches({"dino_freeze_last_layer_steps": 0}, 100) == []


def test_epochs_are_clamped_to_the_run():
    plan = plan_budget(1000, 100, 10, epoch_keys="reference")
    assert plan.epochs_to_steps(1_000) == plan.steps == 100
    assert plan.epochs_to_steps(0) == 0


def test_epoch_mode_fixes_epochs_and_uses_the_subset_as_reference():
    plan = plan_budget(None, 5_000, 256, N_ref=50_000, mode="epochs", epochs=400)
    assert plan.C == 2_000_000 and plan.N_ref == 5_000 and plan.epochs == 400
    assert plan.epochs_to_steps(10) == 10 * (5_000 // 256)


def test_a_plan_saved_before_epoch_keys_keeps_the_reference_reading():
    saved = plan_budget(50e6, 5_000, 256, N_ref=50_000).as_dict()
    del saved["epoch_keys"]
    assert BudgetPlan.from_dict(saved).epoch_keys == "reference"


def test_plan_round_trips_through_a_dict():
    plan = plan_budget(12_345, 1_000, 64, N_ref=2_000)
    assert BudgetPlan.from_dict(plan.as_dict()) == plan
    assert plan.as_dict()["C_eff"] == 192 * 64


@pytest.mark.parametrize(
    ("value", "count"), [("50e6", 50_000_000), (5.0e7, 50_000_000), ("1_000", 1000), (256, 256)]
)
def test_counts_accept_scientific_notation(value, count):
    assert parse_count(value, "budget.C") == count


def test_budget_smaller_than_one_global_batch():
    with pytest.raises(
        UserError, match=r"^budget C=100 images is smaller than one global batch of 256 images$"
    ):
        plan_budget(100, 5_000, 256)


def test_subset_smaller_than_one_global_batch():
    with pytest.raises(
        UserError, match=r"the subset has N=100 images, fewer than one global batch of 256"
    ):
        plan_budget(50e6, 100, 256)


def test_fractional_budget_is_rejected():
    with pytest.raises(UserError, match=r"budget.C=1.5 must be a whole number of images"):
        parse_count(1.5, "budget.C")


def test_unknown_mode_is_rejected():
    with pytest.raises(UserError, match=r"budget.mode='steps' is not one of images, epochs"):
        plan_budget(1e6, 1000, 10, mode="steps")


def test_epoch_mode_needs_epochs():
    with pytest.raises(UserError, match=r"budget.mode=epochs needs budget.epochs > 0"):
        plan_budget(None, 1000, 10, mode="epochs")


def test_unknown_budget_key_is_rejected():
    with pytest.raises(
        UserError,
        match=r"unknown key budget.c; the budget group takes C, mode, epochs, reference_size",
    ):
        check_budget_keys({"C": 1, "c": 2})


def test_a_budget_of_more_than_a_billion_steps_is_one_line():
    with pytest.raises(UserError, match=r"budget C=1e\+30 images is 3.91e\+27 optimizer steps"):
        plan_budget(1e30, 50_000, 256)
