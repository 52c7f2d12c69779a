# SPDX-License-Identifier: MIT
"""Schedules as pure functions of the optimizer step, the one time unit of a budgeted run.

The learning rate, the EMA momentum tau and every method schedule are written in steps taken from
the budget plan, never in epochs, so a 10% and a 100% subset follow the same curve per image seen.
"""

from __future__ import annotations

import math


def warmup_cosine(
    step: int,
    total_steps: int,
    warmup_steps: int,
    base: float,
    warmup_start: float = 0.0,
    final: float = 0.0,
) -> float:
    """Linear warmup from ``warmup_start`` to ``base``, then cosine decay to ``final``.

    Matches solo-learn's ``warmup_cosine`` scheduler with ``interval=step``: the warmup reaches
    ``base`` on its last step, and the cosine runs over the remaining steps.

    Args:
        step: the optimizer step, starting at 0.
        total_steps: S, the steps of the whole run.
        warmup_steps: steps of linear warmup (0 for none).
        base: the value after warmup (e.g. the scaled learning rate).
        warmup_start: the value at step 0 of the warmup.
        final: the value at the last step.

    Returns:
        The scheduled value at ``step``.
    """
    if warmup_steps > 0 and step < warmup_steps:
        if warmup_steps == 1:
            return base
        return warmup_start + (base - warmup_start) * step / (warmup_steps - 1)
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return final + 0.5 * (base - final) * (1.0 + math.cos(math.pi * progress))


def cosine_tau(step: int, total_steps: int, base_tau: float, final_tau: float) -> float:
    """EMA momentum of BYOL/MoCo-style teachers: ``final - (final - base)(cos(pi k/K) + 1)/2``.

    Args:
        step: optimizer steps taken so far.
        total_steps: S, the steps of the whole run.
        base_tau: tau at step 0.
        final_tau: tau at the last step.

    Returns:
        tau at ``step``.
    """
    progress = min(1.0, step / max(1, total_steps))
    return final_tau - (final_tau - base_tau) * (math.cos(math.pi * progress) + 1.0) / 2.0
