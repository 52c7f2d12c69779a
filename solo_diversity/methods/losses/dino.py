# SPDX-License-Identifier: MIT
"""DINO's loss (Caron et al., arXiv:2104.14294) and its teacher temperature, counted in steps.

The loss is lightly's ``DINOLoss``: the cross-entropy ``-sum_k q_k log s_k`` between the centred,
sharpened teacher ``q = softmax((t - c) / T_t)`` of each large crop and the student
``s = softmax(x / T_s)`` of every other crop, averaged over the pairs; then the centre moves as
``c <- 0.9 c + 0.1 mean(t)`` (all-reduced). That is solo-learn's formula for two crops. Small
crops never reach solo-learn's DINO loss: its DINO class adds no head output to the base class's
multicrop forward, so only the large crops' ``z`` are scored (solo-learn solo/methods/dino.py and
base.py ``multicrop_forward``). Here small crops go through the student head and lightly's list
interface scores each of them against every teacher crop, the original DINO behaviour.

solo-learn warms the teacher temperature up linearly per *epoch*; here the warmup is linear per
optimizer step over the warmup that the budget plan converts to steps (:func:`teacher_temperature`)
under its ``epoch_keys`` reading.
"""

from __future__ import annotations

from typing import Any

import torch
from lightly.loss import DINOLoss


class CenteredDINOLoss(DINOLoss):
    """lightly's DINOLoss whose state_dict holds the centre as solo-learn's does.

    lightly keeps ``center`` as (1, 1, P); solo-learn's ``DINOLoss`` registers (1, P). This class
    saves (1, P) and loads either shape, so ``dino_loss_func.center`` moves between checkpoints of
    both libraries.
    """

    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        key = prefix + "center"
        destination[key] = destination[key].reshape(1, -1)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any) -> None:
        key = prefix + "center"
        center = state_dict.get(key)
        if isinstance(center, torch.Tensor) and center.dim() == 2:
            state_dict[key] = center.reshape(1, 1, -1)
        super()._load_from_state_dict(state_dict, prefix, *args)


def teacher_temperature(step: int, warmup_steps: int, warmup_temp: float, temp: float) -> float:
    """Linear warmup from ``warmup_temp`` at step 0 to ``temp`` at ``warmup_steps``, then constant.

    Args:
        step: optimizer steps taken so far.
        warmup_steps: the converted ``warmup_teacher_temperature_epochs`` (0 for no warmup).
        warmup_temp: ``warmup_teacher_temperature``.
        temp: ``teacher_temperature``.

    Returns:
        The teacher temperature T_t for the current step.
    """
    if step >= warmup_steps:
        return temp
    return warmup_temp + (temp - warmup_temp) * step / warmup_steps


def make_dino_loss(
    num_prototypes: int,
    student_temperature: float,
    teacher_temperature: float,
    center_momentum: float = 0.9,
) -> CenteredDINOLoss:
    """Lightly's DINOLoss; its centre is stored as solo-learn's ``(1, num_prototypes)``.

    Call it as ``loss(teacher_out=[t_0, t_1], student_out=[s_0, ..., s_n], teacher_temp=T_t)``
    with each entry (B, num_prototypes), large crops first in the student list.
    """
    return CenteredDINOLoss(
        output_dim=num_prototypes,
        warmup_teacher_temp=teacher_temperature,
        teacher_temp=teacher_temperature,
        warmup_teacher_temp_epochs=0,
        student_temp=student_temperature,
        center_momentum=center_momentum,
    )
