# SPDX-License-Identifier: MIT
"""The METHODS registry: solo-learn's keys mapped to method classes."""

from __future__ import annotations

from solo_diversity.errors import UserError
from solo_diversity.methods.base import BaseMethod
from solo_diversity.methods.simclr import SimCLR

METHODS: dict[str, type[BaseMethod]] = {
    "simclr": SimCLR,
}


def get_method(name: str) -> type[BaseMethod]:
    """The class registered as ``name``; a clear error listing the valid names otherwise."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


__all__ = ["METHODS", "BaseMethod", "SimCLR", "get_method"]
