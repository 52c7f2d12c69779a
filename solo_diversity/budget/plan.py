# SPDX-License-Identifier: MIT
"""The compute budget: C images processed, split into exactly S optimizer steps of G images.

This module owns the arithmetic of the paper's Section 4. Given a budget C, a subset of N unique
images and a global batch G it derives S = floor(C / G) optimizer steps, the effective budget
C_eff = S * G, the (possibly fractional) number of epochs E = C / N and the diversity D = N / C.
solo-learn counts several hyperparameters in epochs (warmup, checkpoint frequency, DINO's and SwAV's
switches). Two readings convert them to optimizer steps (``budget.epoch_keys``):

- ``subset`` (the default): solo-learn's meaning, and so the paper's procedure. An epoch is a pass
  over the subset being trained, ``N // G`` steps (solo-learn's ``estimated_stepping_batches /
  max_epochs`` with ``drop_last``), so a 10% subset warms up over a tenth of the images.
- ``reference``: the budget-normalized reading. An epoch is a pass over a reference run of N_ref
  images, so every subset switches after the same number of images seen.

Everything here is a pure function of numbers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from solo_diversity.errors import UserError

BUDGET_MODES = ("images", "epochs")
EPOCH_KEY_READINGS = ("subset", "reference")
BUDGET_KEYS = ("C", "mode", "epochs", "reference_size", "epoch_keys", "allow_late_switches")
# More optimizer steps than any run trains (the paper's longest has 382,812): a mistyped budget.
MAX_STEPS = 10**9
# A warmup longer than this share of the run leaves little of the cosine: warned about.
LONG_WARMUP_SHARE = 0.25


def parse_count(value: Any, name: str) -> int:
    """Read an image count written as ``50e6``, ``"50e6"``, ``50_000_000`` or ``5.0e7``.

    Args:
        value: the raw config value.
        name: the config key, for the error message.

    Returns:
        The count as an int.
    """
    try:
        number = float(str(value).replace("_", ""))
    except ValueError:
        raise UserError(f"{name}={value!r} is not a number; write it like 50e6") from None
    if not math.isfinite(number) or number != int(number):
        raise UserError(f"{name}={value!r} must be a whole number of images")
    return int(number)


@dataclass(frozen=True)
class BudgetPlan:
    """A resolved budget: the numbers that decide how long a run trains.

    Attributes:
        C: the requested budget in images processed.
        N: unique images in the pretraining subset.
        N_ref: images in the reference run whose epochs the epoch-counted keys refer to.
        global_batch: G, images per optimizer step over all devices, nodes and accumulation.
        steps: S, the exact number of optimizer steps.
        mode: ``images`` (C fixed) or ``epochs`` (E fixed, C = N * E).
        epoch_keys: how epoch-counted keys become steps: ``subset`` (epochs of the subset, as
            solo-learn counts them) or ``reference`` (epochs of the N_ref-image reference run).
    """

    C: int
    N: int
    N_ref: int
    global_batch: int
    steps: int
    mode: str = "images"
    epoch_keys: str = "subset"

    @property
    def C_eff(self) -> int:  # noqa: N802 - the paper's symbol
        """Images the run will really process: S * G <= C."""
        return self.steps * self.global_batch

    @property
    def epochs(self) -> float:
        """E = C / N, not necessarily whole: a run may stop mid-epoch."""
        return self.C / self.N

    @property
    def diversity(self) -> float:
        """D = N / C, the paper's pretraining diversity."""
        return self.N / self.C

    @property
    def reference_epochs(self) -> float:
        """E_ref = C / N_ref, the epochs the reference run would train for."""
        return self.C / self.N_ref

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per pass over the subset when every step holds exactly G images."""
        return self.N // self.global_batch

    @property
    def steps_per_schedule_epoch(self) -> float:
        """Optimizer steps in one epoch as the epoch-counted keys read it (``epoch_keys``).

        ``subset``: ``N // G``, the steps of one pass over the subset with ``drop_last``, as
        solo-learn derives them. ``reference``: ``S / E_ref`` = ``S * N_ref / C``, the share of the
        run that one pass over the reference set takes.
        """
        if self.epoch_keys == "subset":
            return float(self.steps_per_epoch)
        return self.steps / self.reference_epochs

    def _steps_of(self, epochs: float) -> int:
        """Unclamped steps of ``epochs`` schedule epochs under the plan's reading."""
        if self.epoch_keys == "subset":
            return round(float(epochs) * self.steps_per_epoch)
        return round(float(epochs) / self.reference_epochs * self.steps)

    def epochs_to_steps(self, epochs: float) -> int:
        """Convert an epoch-counted value into optimizer steps, clamped to [0, S].

        ``subset``: ``round(epochs * (N // G))`` (at 10% of CIFAR-100, G = 256: 10 warmup epochs
        are 190 steps). ``reference``: the share ``epochs / E_ref`` of S (1,953 steps there).
        """
        return max(0, min(self.steps, self._steps_of(epochs)))

    def epoch_at_step(self, step: int) -> int:
        """The schedule epoch that optimizer step ``step`` (0-based) falls in.

        What solo-learn's ``current_epoch`` means under the plan's reading: the largest ``e`` with
        ``epochs_to_steps(e) <= step``, so its epoch-counted rules (``current_epoch < k``,
        ``>= k``) switch at exactly the step :meth:`epochs_to_steps` gives the built-in classes.
        """
        epoch = int(step / self.steps_per_schedule_epoch)
        while self._steps_of(epoch + 1) <= step:
            epoch += 1
        while epoch > 0 and self._steps_of(epoch) > step:
            epoch -= 1
        return epoch

    @property
    def schedule_epochs(self) -> int:
        """Whole schedule epochs that the S steps reach (solo-learn's ``max_epochs``)."""
        return max(1, math.ceil(self.steps / self.steps_per_schedule_epoch))

    def images_at_step(self, step: int) -> int:
        """Images processed after ``step`` optimizer steps."""
        return step * self.global_batch

    def as_dict(self) -> dict[str, Any]:
        """Plain dict with both stored and derived fields, for checkpoints, JSON and logs."""
        out = dataclasses.asdict(self)
        out.update(
            C_eff=self.C_eff,
            E=self.epochs,
            D=self.diversity,
            E_ref=self.reference_epochs,
            steps_per_epoch=self.steps_per_epoch,
        )
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BudgetPlan:
        """Rebuild a plan from :meth:`as_dict` output (derived fields are ignored).

        A plan saved before ``epoch_keys`` existed was trained under the ``reference`` reading,
        the only one then, and keeps it on resume.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in names}
        kept.setdefault("epoch_keys", "reference")
        return cls(**kept)


def plan_budget(
    C: int | float | str | None,  # noqa: N803 - the paper's symbol
    N: int,  # noqa: N803
    global_batch: int,
    *,
    N_ref: int | None = None,  # noqa: N803
    mode: str = "images",
    epochs: float | None = None,
    epoch_keys: str = "subset",
) -> BudgetPlan:
    """Derive the exact optimizer-step plan of a budget-normalized run.

    Args:
        C: budget in images processed (``images`` mode); ignored in ``epochs`` mode.
        N: unique images in the pretraining subset.
        global_batch: G = per-device batch * devices * nodes * accumulate_grad_batches.
        N_ref: reference dataset size for epoch-counted keys; defaults to N. In ``epochs`` mode it
            is always N, since an epoch-normalized run counts its schedule in its own epochs.
        mode: ``images`` fixes C (the paper); ``epochs`` fixes E and sets C = N * E (the
            supplementary epoch-normalized baseline).
        epochs: E, required in ``epochs`` mode.
        epoch_keys: ``subset`` or ``reference``: how epoch-counted keys become steps.

    Returns:
        The resolved :class:`BudgetPlan`.
    """
    _check_settings(N, global_batch, mode=mode, epoch_keys=epoch_keys)
    budget, reference = _budget_images(C, N, N_ref, mode=mode, epochs=epochs)
    _check_budget_fits(budget, N, global_batch)
    return BudgetPlan(
        C=budget,
        N=N,
        N_ref=reference,
        global_batch=global_batch,
        steps=budget // global_batch,
        mode=mode,
        epoch_keys=epoch_keys,
    )


def _check_settings(N: int, global_batch: int, *, mode: str, epoch_keys: str) -> None:  # noqa: N803
    """Refuse an unknown mode or epoch-key reading, an empty subset or a non-positive batch."""
    if mode not in BUDGET_MODES:
        raise UserError(f"budget.mode={mode!r} is not one of {', '.join(BUDGET_MODES)}")
    if epoch_keys not in EPOCH_KEY_READINGS:
        raise UserError(
            f"budget.epoch_keys={epoch_keys!r} is not one of {', '.join(EPOCH_KEY_READINGS)}"
        )
    if N <= 0:
        raise UserError(f"the pretraining subset is empty (N={N})")
    if global_batch <= 0:
        raise UserError(f"the global batch must be positive, got {global_batch}")


def _budget_images(
    C: int | float | str | None,  # noqa: N803
    N: int,  # noqa: N803
    N_ref: int | None,  # noqa: N803
    *,
    mode: str,
    epochs: float | None,
) -> tuple[int, int]:
    """(C, N_ref) in images: C as given, or N * E in ``epochs`` mode (whose N_ref is N)."""
    if mode == "epochs":
        if epochs is None or float(epochs) <= 0:
            raise UserError(f"budget.mode=epochs needs budget.epochs > 0, got {epochs!r}")
        budget = round(float(epochs) * N)
        N_ref = N  # noqa: N806
    else:
        if C is None:
            raise UserError("budget.C is not set; give the budget in images, e.g. budget.C=50e6")
        budget = parse_count(C, "budget.C")
    if N_ref is None:
        N_ref = N  # noqa: N806
    if N_ref <= 0:
        raise UserError(f"budget.reference_size must be positive, got {N_ref}")
    return budget, N_ref


def _check_budget_fits(budget: int, N: int, global_batch: int) -> None:  # noqa: N803
    """Refuse a budget below one global batch or absurdly many steps, and a subset below a batch."""
    if budget < global_batch:
        raise UserError(
            f"budget C={budget} images is smaller than one global batch of {global_batch} images"
        )
    if budget // global_batch > MAX_STEPS:
        raise UserError(
            f"budget C={budget:.3g} images is {budget // global_batch:.3g} optimizer steps of "
            f"{global_batch}; more than {MAX_STEPS:.0e} steps is no run (check the exponent)"
        )
    if N < global_batch:
        raise UserError(
            f"the subset has N={N} images, fewer than one global batch of {global_batch}; "
            "use a larger fraction or a smaller optimizer.batch_size"
        )


def check_switches(switches: dict[str, int], steps: int, *, allow_late: bool = False) -> list[str]:
    """Refuse an epoch-counted switch that never takes effect; warn about a long warmup.

    A switch converted to S or more steps (clamped to S) would land at or past the last step:
    a warmup that is the whole run never decays, a queue that starts after the end never starts.
    The recipe must state it in a form that fits (or the run forces it with
    ``budget.allow_late_switches=true``).

    Args:
        switches: converted keys in steps (clamped to S), e.g. ``{"warmup_steps": 190}``; a key
            of 0 epochs is 0 steps and never late.
        steps: S, the run's optimizer steps.
        allow_late: keep a late switch with a warning instead of refusing the run.

    Returns:
        Warning lines (a warmup over a quarter of the run; forced late switches).
    """
    warnings = []
    for name, value in switches.items():
        if value >= steps:
            line = (
                f"{name} lands at or past the last of the run's {steps:,} steps; "
                "state it in fewer epochs (or budget.allow_late_switches=true)"
            )
            if not allow_late:
                raise UserError(line)
            warnings.append(line)
    warmup = switches.get("warmup_steps", 0)
    if warmup > LONG_WARMUP_SHARE * steps:
        warnings.append(
            f"warmup_steps={warmup:,} is over a quarter of the run's {steps:,} steps: the cosine "
            "decay gets less than three quarters of the budget"
        )
    return warnings


def check_budget_keys(budget_cfg: dict[str, Any]) -> None:
    """Reject unknown keys in the ``budget`` config group (a typo must not go unnoticed)."""
    unknown = sorted(set(budget_cfg) - set(BUDGET_KEYS))
    if unknown:
        raise UserError(
            f"unknown key budget.{unknown[0]}; the budget group takes {', '.join(BUDGET_KEYS)}"
        )


# The keys each budget mode reads (``mode`` itself is always read).
USED_BUDGET_KEYS = {
    "images": ("C", "reference_size", "epoch_keys", "allow_late_switches"),
    "epochs": ("epochs", "epoch_keys", "allow_late_switches"),
}
UNUSED_WHY = {
    "images": "budget.mode=images fixes C; E = C / N follows from it",
    "epochs": "budget.mode=epochs sets C = N x budget.epochs and counts the schedule in its own "
    "epochs (N_ref = N)",
}


def unused_budget_keys(budget_cfg: dict[str, Any]) -> list[str]:
    """One line for each set ``budget`` key that the chosen mode ignores.

    These are warnings, not errors: budget values arrive from layered config groups (a data group
    sets ``budget.C``, a preset ``budget.reference_size``), so a key that the mode ignores is
    usually inherited rather than mistyped; unknown keys (typos) are errors
    (:func:`check_budget_keys`).

    Args:
        budget_cfg: the ``budget`` group as a plain dict.

    Returns:
        Lines like ``budget.reference_size=50000 is ignored: budget.mode=epochs sets ...``.
    """
    mode = str(budget_cfg.get("mode", "images"))
    if mode not in USED_BUDGET_KEYS:
        return []  # plan_budget names the bad mode
    return [
        f"budget.{key}={budget_cfg[key]!r} is ignored: {UNUSED_WHY[mode]}"
        for key in BUDGET_KEYS
        if key != "mode" and key not in USED_BUDGET_KEYS[mode] and budget_cfg.get(key) is not None
    ]
