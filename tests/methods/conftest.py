# SPDX-License-Identifier: MIT
"""Method fixtures: build any registered method from its shipped config, shrunk for CPU tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
from omegaconf import DictConfig

from solo_diversity.methods import BUILTIN_METHODS
from tests.methods.method_helpers import method_cfg


@pytest.fixture
def build_method(compose_cfg: Callable[..., DictConfig]) -> Callable[..., Any]:
    """``build_method(name, overrides=(), **plan_sizes)`` -> a method instance (CPU, fp32)."""

    def make(name: str, overrides: Sequence[str] = (), **sizes: int) -> Any:
        torch.manual_seed(0)
        cfg = method_cfg(compose_cfg, name, overrides, **sizes)
        return BUILTIN_METHODS[name](cfg)

    return make
