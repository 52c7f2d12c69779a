# SPDX-License-Identifier: MIT
"""The METHODS registry: solo-learn's keys mapped to method classes.

``BUILTIN_METHODS`` are this package's classes. When the real solo-learn is importable, METHODS
maps each key to solo-learn's class with the budget plugin mixed in instead (see
:mod:`solo_diversity.methods.upstream`); ``BACKEND`` says which set is active.
"""

from __future__ import annotations

from solo_diversity.errors import UserError
from solo_diversity.methods.barlow_twins import BarlowTwins
from solo_diversity.methods.base import BaseMethod
from solo_diversity.methods.byol import BYOL
from solo_diversity.methods.dino import DINO
from solo_diversity.methods.mocov3 import MoCoV3
from solo_diversity.methods.momentum import BaseMomentumMethod
from solo_diversity.methods.simclr import SimCLR
from solo_diversity.methods.swav import SwAV
from solo_diversity.methods.upstream import backend_name, upstream_methods
from solo_diversity.methods.vicreg import VICReg

BUILTIN_METHODS: dict[str, type[BaseMethod]] = {
    "simclr": SimCLR,
    "mocov3": MoCoV3,
    "vicreg": VICReg,
    "dino": DINO,
    "byol": BYOL,
    "barlow_twins": BarlowTwins,
    "swav": SwAV,
}

METHODS: dict[str, type[BaseMethod]] = {**BUILTIN_METHODS, **upstream_methods()}
BACKEND = backend_name()


def get_method(name: str) -> type[BaseMethod]:
    """The class registered as ``name``; a clear error listing the valid names otherwise."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


__all__ = [
    "BACKEND",
    "BUILTIN_METHODS",
    "BYOL",
    "DINO",
    "METHODS",
    "BarlowTwins",
    "BaseMethod",
    "BaseMomentumMethod",
    "MoCoV3",
    "SimCLR",
    "SwAV",
    "VICReg",
    "get_method",
]
