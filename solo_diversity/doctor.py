# SPDX-License-Identifier: MIT
"""``solo-div doctor``: what this installation will run with (method backend, libraries, device).

Prints the active method backend (built-in classes, or solo-learn's with the budget plugin), the
registered methods and backbones, the versions of the libraries the methods use and whether a
GPU is visible. It changes nothing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
from typing import Any

PACKAGES = ("torch", "torchvision", "lightning", "timm", "lightly", "hydra-core")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def doctor_report() -> dict[str, Any]:
    """The facts ``solo-div doctor`` prints, as a dict."""
    # Imported here, not at the top: torch and the method classes would slow every ``--help``.
    import torch

    from solo_diversity.methods import BACKEND, METHODS
    from solo_diversity.methods.upstream import solo_learn_version
    from solo_diversity.models.backbones import BACKBONES

    return {
        "method backend": BACKEND,
        "methods": ", ".join(f"{k} ({v.__module__}.{v.__name__})" for k, v in METHODS.items()),
        "backbones": ", ".join(sorted(BACKBONES)),
        **{f"version {p}": _version(p) for p in PACKAGES},
        "version solo-learn": solo_learn_version(),
        "cuda": torch.cuda.is_available(),
    }


def _doctor(args: argparse.Namespace) -> int:
    for key, value in doctor_report().items():
        print(f"{key}: {value}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``doctor`` to the ``solo-div`` parser."""
    p = subparsers.add_parser("doctor", help="show the method backend, libraries and device")
    p.set_defaults(func=_doctor)
