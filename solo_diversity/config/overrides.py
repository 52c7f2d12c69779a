# SPDX-License-Identifier: MIT
"""Where the shipped configs live, and the command-line overrides every config accepts.

Kept free of torch and Lightning: a sweep plans its cells (and decides that a finished one needs
nothing) with these alone, while :mod:`solo_diversity.config.pretrain` re-exports them for the
entry points.
"""

from __future__ import annotations

import os
from pathlib import Path

# Keys this project adds to solo-learn's schema, and ``wandb.offline`` (an upstream key that its
# wandb groups leave out); hydra only sets them on a config that lacks them (every solo-learn
# YAML) when prefixed with ``++`` (add or override).
ADDED_KEY_PREFIXES = (
    "budget.",
    "loggers=",
    "wandb.offline=",
    "checkpoint.every_n_steps=",
    "checkpoint.every_minutes=",
    "checkpoint.keep_prev=",
    "knn_eval.",
)
# Keys that the shipped configs gained (so they need no ``+`` there) and solo-learn's YAMLs lack;
# a ``+seed=1`` written when the shipped configs lacked them too still works.
SHIPPED_KEY_PREFIXES = (
    "seed=",
    "resume_from_checkpoint=",
    "data.stratified=",
    "data.index_seed=",
    "data.max_bad_fraction=",
    "data.min_steps_per_epoch=",
)


def budget_overrides(argv: list[str]) -> list[str]:
    """Command-line overrides with bare ``budget.<key>=v`` (``loggers=``, ...) as ``++...``.

    solo-learn's YAMLs have no ``budget`` group, and hydra refuses to set a key that a config
    lacks unless it is prefixed with ``+`` (add) or ``++`` (add or override). ``++`` works whether
    the config has the key or not, so ``budget.C=50e6`` reads the same on every config. The keys
    of :data:`SHIPPED_KEY_PREFIXES` become ``++`` written bare or with one ``+``.
    """
    return [_add_or_override(arg) for arg in argv]


def _add_or_override(arg: str) -> str:
    if arg.startswith("+") and arg[1:].startswith(SHIPPED_KEY_PREFIXES):
        return f"+{arg}"
    if arg.startswith((*ADDED_KEY_PREFIXES, *SHIPPED_KEY_PREFIXES)) and "=" in arg:
        return f"++{arg}"
    return arg


def configs_dir() -> Path:
    """``$SOLO_DIV_CONFIGS``, else the checkout's ``yaml_configs``, else ``./yaml_configs``."""
    if os.environ.get("SOLO_DIV_CONFIGS"):
        return Path(os.environ["SOLO_DIV_CONFIGS"])
    beside = Path(__file__).resolve().parents[2] / "yaml_configs"
    return beside if beside.is_dir() else Path("yaml_configs")
