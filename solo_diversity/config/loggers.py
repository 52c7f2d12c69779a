# SPDX-License-Identifier: MIT
"""The ``loggers`` list and the ``wandb`` group, checked before anything runs.

A bad logger setting fails in one line at start-up, not after the first checkpoint;
:mod:`solo_diversity.run.loggers` builds the loggers these keys name.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from solo_diversity.errors import UserError

FILE_LOGGERS = ("csv", "tensorboard")


def logger_names(cfg: DictConfig) -> list[str]:
    """The ``loggers`` list, checked: each entry one of :data:`FILE_LOGGERS`, once."""
    value = cfg.get("loggers")
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    elif isinstance(value, ListConfig):
        value = list(OmegaConf.to_container(value))  # type: ignore[arg-type]
    if not isinstance(value, list):
        raise UserError(f"loggers={value!r} must be a list, e.g. loggers=[csv,tensorboard]")
    names = [str(v) for v in value]
    for name in names:
        if name == "wandb":
            raise UserError("loggers=[...wandb] is not a file logger; set wandb.enabled=true")
        if name not in FILE_LOGGERS:
            raise UserError(
                f"loggers: unknown logger {name!r}; choose from {', '.join(FILE_LOGGERS)}"
            )
    if len(set(names)) != len(names):
        raise UserError(f"loggers={names} names a logger twice")
    return names


def wandb_entity(value: Any) -> str | None:
    """``wandb.entity``; solo-learn's ``private.yaml`` writes ``None``, a string in YAML."""
    if value is None or str(value) in ("None", "null", ""):
        return None
    return str(value)


def check_logger_keys(cfg: DictConfig) -> None:
    """Fail early, with one line, on a bad ``loggers`` list or ``wandb`` group."""
    logger_names(cfg)
    wandb_cfg = cfg.get("wandb") or {}
    for key in ("enabled", "offline"):
        value = wandb_cfg.get(key, False)
        if not isinstance(value, bool):
            raise UserError(f"wandb.{key}={value!r} must be true or false")
