# SPDX-License-Identifier: MIT
"""Config keys that solo-learn accepts but this project does not implement: one line each.

solo-learn's schema is wide (mixup, auto-UMAP, layer decay, ...). A key that a user sets and that
would silently do nothing here is worse than an error, so each entry point lists the upstream keys
it leaves out, with the value that means "off", and :func:`reject_unsupported` fails on any other
value with one line naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from solo_diversity.errors import UserError

_ABSENT = object()


def reject_unsupported(
    cfg: DictConfig, unsupported: Mapping[str, tuple[Any, str]], where: str
) -> None:
    """Fail when ``cfg`` sets an upstream key that ``where`` does not implement.

    Args:
        cfg: the composed config.
        unsupported: dotted key -> (values that mean "off", why it is not supported). The first
            element is a tuple of accepted "off" values (``None`` is always accepted).
        where: the entry point's name for the message, e.g. ``"main_linear.py"``.

    Raises:
        UserError: naming the first key set to a value other than its "off" values.
    """
    for key, (off_values, why) in unsupported.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is _ABSENT or value is None:
            continue
        plain = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        if plain in off_values:
            continue
        raise UserError(f"{key}={plain!r} is a solo-learn key that {where} does not support: {why}")
