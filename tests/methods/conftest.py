# SPDX-License-Identifier: MIT
"""Method fixtures: build any registered method from its shipped config, shrunk for CPU tests.

``build_method`` is parametrized over the method backends this installation has: the built-in
classes always, and solo-learn's classes with the budget plugin when solo-learn is importable, so
every method test runs against both backends where both exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import DictConfig

from solo_diversity.methods import BUILTIN_METHODS, METHODS
from solo_diversity.methods.upstream import solo_learn_available
from tests.methods.method_helpers import method_cfg

BACKENDS: dict[str, dict[str, Any]] = {
    "built-in": BUILTIN_METHODS,
    **({"solo-learn": METHODS} if solo_learn_available() else {}),
}


def _builder(classes: dict[str, Any], compose_cfg: Callable[..., DictConfig]) -> Callable[..., Any]:
    def make(name: str, overrides: Sequence[str] = (), **sizes: int) -> Any:
        torch.manual_seed(0)
        cfg = method_cfg(compose_cfg, name, overrides, **sizes)
        model = classes[name](cfg)
        if classes[name] is not BUILTIN_METHODS[name]:
            # solo-learn builds some state when training starts (SwAV's Sinkhorn-Knopp, queue)
            model.trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False)
            model.on_train_start()
            model._trainer = None  # detached again: steps are called by hand in these tests
        return model

    return make


@pytest.fixture(params=sorted(BACKENDS))
def build_method(request, compose_cfg: Callable[..., DictConfig]) -> Callable[..., Any]:
    """``build_method(name, overrides=(), **plan_sizes)`` -> a method instance (CPU, fp32), on
    each available backend: for what a solo-learn user sees (keys, shapes, losses, checkpoints)."""
    return _builder(BACKENDS[request.param], compose_cfg)


@pytest.fixture
def build_builtin_method(compose_cfg: Callable[..., DictConfig]) -> Callable[..., Any]:
    """The same on the built-in classes only: for tests of their internals (EMA, schedules)."""
    return _builder(BUILTIN_METHODS, compose_cfg)
