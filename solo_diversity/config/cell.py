# SPDX-License-Identifier: MIT
"""A sweep cell's pretraining config, composed as ``main_pretrain.py`` composes it, read once.

hydra's compose API over ``yaml_configs`` with the cell's overrides gives the config that would
train; :func:`read_cell` reads from it what planning the cell needs into a frozen
:class:`CellConfig`: the method, backbone, dataset, fraction, recipe, optimizer, warmup, the
budget keys and the global batch (``optimizer.global_batch_size``, which the device count leaves
unchanged; an explicit per-device ``optimizer.batch_size`` keeps solo-learn's meaning and wins).
Only hydra, omegaconf and arithmetic: planning a sweep loads neither torch nor Lightning.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from solo_diversity.budget.plan import BudgetPlan, parse_count, plan_budget
from solo_diversity.config.batch import per_device_batch
from solo_diversity.errors import UserError

DEFAULT_WARMUP_EPOCHS = 10  # solo-learn's default scheduler.warmup_epochs


@dataclass(frozen=True)
class Recipe:
    """The recipe a cell composed to (``recipe`` of the config): name, scale, arch, source."""

    name: str
    scale: str
    arch: str
    source: str


@dataclass(frozen=True)
class CellBudget:
    """The ``budget`` keys of a cell as written (parsed when the plan is made)."""

    C: Any
    reference_size: Any
    mode: str
    epochs: Any
    epoch_keys: str


@dataclass(frozen=True)
class CellConfig:
    """What planning a cell reads from its composed config (see the module docstring).

    Attributes:
        method: ``method`` (None or empty: the config names none).
        dataset: ``data.dataset``.
        fraction: ``data.fraction`` (-1, all of the set, reads as 1.0).
        backbone: ``backbone.name``.
        recipe: the ``recipe`` group; None for a config without the recipe groups.
        optimizer: ``optimizer.name``.
        lr: ``optimizer.lr``.
        weight_decay: ``optimizer.weight_decay``.
        warmup_epochs: ``scheduler.warmup_epochs`` of a ``warmup_cosine`` schedule, else None.
        budget: the ``budget`` keys.
        global_batch: images per optimizer step (None when the batch keys do not split).
        batch_error: why they do not (raised when the plan is asked for, as the run would stop).
        record: the composed config as plain values.
    """

    method: str | None
    dataset: str
    fraction: float
    backbone: str
    recipe: Recipe | None
    optimizer: str
    lr: float
    weight_decay: float
    warmup_epochs: float | None
    budget: CellBudget
    global_batch: int | None
    batch_error: str | None = None
    record: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def budget_plan(self, n: int, size: int | None) -> BudgetPlan:
        """The budget plan with ``n`` images; N_ref defaults to ``size`` (or N).

        Raises:
            UserError: a bad ``budget.reference_size`` or ``budget.C``, or batch keys that do
                not split over the cell's devices.
        """
        budget = self.budget
        reference = budget.reference_size
        n_ref = parse_count(reference, "budget.reference_size") if reference is not None else size
        compute = None if budget.C is None else parse_count(budget.C, "budget.C")
        if self.global_batch is None:
            raise UserError(str(self.batch_error))
        return plan_budget(
            compute,
            n,
            self.global_batch,
            N_ref=n_ref if n_ref is not None else n,
            mode=budget.mode,
            epochs=budget.epochs,
            epoch_keys=budget.epoch_keys,
        )


@contextmanager
def _hydra_at(root: Path) -> Iterator[None]:
    """Hydra on ``root``, also inside a running hydra app (a sweep job), restored after."""
    outer = GlobalHydra.instance()
    app = outer.hydra if outer.is_initialized() else None
    outer.clear()
    try:
        with initialize_config_dir(config_dir=str(root), version_base="1.2"):
            yield
    finally:
        if app is not None:
            GlobalHydra.instance().clear()
            GlobalHydra.instance().initialize(app)


def _compose(root: Path, config: str, overrides: tuple[str, ...]) -> DictConfig:
    """``config`` of ``root`` composed with ``overrides``, read-only.

    Raises:
        UserError: no such config, or the overrides do not compose (hydra's first line).
    """
    if not (root / f"{config}.yaml").is_file():
        raise UserError(f"config {root / (config + '.yaml')} does not exist")
    try:
        with _hydra_at(root):
            cfg = compose(config_name=config, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{config} {' '.join(overrides)} does not compose: {first}") from None
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _select(cfg: DictConfig, key: str, default: Any = None) -> Any:
    value = OmegaConf.select(cfg, key, default=default, throw_on_missing=False)
    return default if value is None else value


def cell_global_batch(cfg: DictConfig) -> int:
    """G of a composed config: the recipe's global batch, or solo-learn's per-device x world."""
    # Counted as written ("cpu" needs no hardware): cells are planned on machines without GPUs.
    devices = cfg.get("devices")
    devices = OmegaConf.to_container(devices) if OmegaConf.is_config(devices) else devices
    world = _count_devices(devices) * int(cfg.get("num_nodes") or 1)
    accumulate = int(cfg.get("accumulate_grad_batches") or 1)
    return per_device_batch(cfg, world) * world * accumulate


def _count_devices(devices: Any) -> int:
    """Devices per node as Lightning counts them on the CPU, without loading it when it can.

    A positive count is what Lightning resolves it to; anything else ("auto", a list, a string)
    is Lightning's to read, loaded only then, so planning a sweep's cells needs no torch.
    """
    if isinstance(devices, int) and not isinstance(devices, bool) and devices > 0:
        return devices
    from solo_diversity.methods.settings import count_devices  # Lightning: an unusual value

    return count_devices(devices, "cpu")


def _recipe(cfg: DictConfig) -> Recipe | None:
    raw = cfg.get("recipe")
    if raw is None:  # a config without the recipe groups (a copy of an older checkout)
        return None
    return Recipe(str(raw.name), str(raw.scale), str(raw.arch), str(raw.get("source") or ""))


def _warmup_epochs(cfg: DictConfig) -> float | None:
    if str(_select(cfg, "scheduler.name", "warmup_cosine")) != "warmup_cosine":
        return None
    return float(_select(cfg, "scheduler.warmup_epochs", DEFAULT_WARMUP_EPOCHS))


def _global_batch(cfg: DictConfig) -> tuple[int | None, str | None]:
    try:
        return cell_global_batch(cfg), None
    except UserError as err:
        return None, str(err)


@lru_cache(maxsize=1024)
def read_cell(root: Path, config: str, overrides: tuple[str, ...]) -> CellConfig:
    """Compose ``config`` of ``root`` with ``overrides`` and read the cell's :class:`CellConfig`.

    Cached: a sweep composes the same few configs for every seed and view of its cells.

    Raises:
        UserError: the config does not compose.
    """
    cfg = _compose(root, config, overrides)
    method = _select(cfg, "method")
    fraction = float(_select(cfg, "data.fraction", -1))
    global_batch, batch_error = _global_batch(cfg)
    record = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(record, dict)
    return CellConfig(
        method=None if method is None else str(method),
        dataset=str(_select(cfg, "data.dataset")),
        fraction=1.0 if fraction == -1 else fraction,
        backbone=str(_select(cfg, "backbone.name")),
        recipe=_recipe(cfg),
        optimizer=str(_select(cfg, "optimizer.name", "")),
        lr=float(_select(cfg, "optimizer.lr", 0.0)),
        weight_decay=float(_select(cfg, "optimizer.weight_decay", 0.0)),
        warmup_epochs=_warmup_epochs(cfg),
        budget=CellBudget(
            C=_select(cfg, "budget.C"),
            reference_size=_select(cfg, "budget.reference_size"),
            mode=str(_select(cfg, "budget.mode", "images")),
            epochs=_select(cfg, "budget.epochs"),
            epoch_keys=str(_select(cfg, "budget.epoch_keys", "subset")),
        ),
        global_batch=global_batch,
        batch_error=batch_error,
        record={str(k): v for k, v in record.items()},
    )
