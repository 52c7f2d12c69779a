# SPDX-License-Identifier: MIT
"""SSL losses as pure functions of tensors; methods are thin shells around them."""

from solo_diversity.methods.losses.simclr import simclr_loss

__all__ = ["simclr_loss"]
