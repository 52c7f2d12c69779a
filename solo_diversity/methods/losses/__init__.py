# SPDX-License-Identifier: MIT
"""SSL losses as pure functions of tensors; methods are thin shells around them."""

from solo_diversity.methods.losses.barlow import barlow_loss
from solo_diversity.methods.losses.byol import byol_loss
from solo_diversity.methods.losses.dino import make_dino_loss, teacher_temperature
from solo_diversity.methods.losses.mocov3 import mocov3_loss
from solo_diversity.methods.losses.simclr import simclr_loss
from solo_diversity.methods.losses.swav import sinkhorn_codes, swav_loss
from solo_diversity.methods.losses.vicreg import vicreg_loss

__all__ = [
    "barlow_loss",
    "byol_loss",
    "make_dino_loss",
    "mocov3_loss",
    "simclr_loss",
    "sinkhorn_codes",
    "swav_loss",
    "teacher_temperature",
    "vicreg_loss",
]
