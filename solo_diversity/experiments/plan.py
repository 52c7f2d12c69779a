# SPDX-License-Identifier: MIT
"""What a cell will run: its method, backbone, data, N, and the budget plan (E, D, steps).

A cell's values come from three places, the last winning: its pretraining config
(``yaml_configs/<config>.yaml``), the data group it selects (``yaml_configs/data/<group>.yaml``,
hydra's ``data=<group>``) and its own overrides. N is the cell's own ``N`` or
``round(fraction * size)`` of the catalog's dataset size, as the index's subset takes it; the plan
is :func:`solo_diversity.budget.plan_budget` at the given devices and nodes. A cell's ``run_key``
names the pretraining run alone, so lists that share a run (Table 2, Table 4, Supp. Table 3 ...)
can share its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from solo_diversity.budget import BudgetPlan, parse_count, plan_budget
from solo_diversity.catalog import TRAIN_SIZES, train_size
from solo_diversity.errors import UserError
from solo_diversity.experiments.cells import CellSpec, default_configs_dir, fill
from solo_diversity.index.format import round_half_up

_RUN_KEYS = ("data", "data.fraction", "backbone.name", "budget.C", "budget.mode", "budget.epochs")


@dataclass(frozen=True)
class ResolvedCell:
    """A cell with everything derived: what trains, on how many images, for how many steps."""

    spec: CellSpec
    method: str
    backbone: str
    dataset: str
    pretrain_set: str
    fraction: float
    plan: BudgetPlan
    missing: tuple[str, ...]

    @property
    def run_key(self) -> str:
        """A readable, unique name of the pretraining run (config and resolved values)."""
        rest = {k: v for k, v in self.spec.overrides.items() if k not in _RUN_KEYS}
        canon = json.dumps(
            [
                self.spec.config,
                self.pretrain_set,
                self.backbone,
                self.plan.N,
                self.plan.C,
                self.plan.mode,
                rest,
            ],
            sort_keys=True,
            default=str,
        )
        digest = hashlib.sha1(canon.encode()).hexdigest()[:6]
        return (
            f"{self.method}-{self.pretrain_set}-{self.backbone}-N{self.plan.N}"
            f"-C{self.plan.C / 1e6:g}M-{digest}"
        )

    def as_dict(self, env: dict[str, str] | None = None) -> dict[str, Any]:
        """Plain values for ``--json`` and for scripts."""
        return {
            "table": self.spec.table,
            "id": self.spec.id,
            "config": self.spec.config,
            "overrides": self.spec.override_args(env),
            "run_key": self.run_key,
            "method": self.method,
            "backbone": self.backbone,
            "dataset": self.dataset,
            "pretrain_set": self.pretrain_set,
            "fraction": self.fraction,
            "N": self.plan.N,
            "C": self.plan.C,
            "E": self.plan.epochs,
            "D": self.plan.diversity,
            "steps": self.plan.steps,
            "global_batch": self.plan.global_batch,
            "mode": self.plan.mode,
            "probes": [
                {
                    "dataset": p.dataset,
                    "label_fraction": p.label_fraction,
                    "mode": p.mode,
                    "overrides": p.overrides(self.dataset),
                }
                for p in self.spec.probes
            ],
            "missing": list(self.missing),
        }


@lru_cache(maxsize=64)
def read_yaml(path: Path) -> dict[str, Any]:
    """A config file as a mapping (cached: a sweep reads the same few files for every cell)."""
    if not path.is_file():
        raise UserError(f"config {path} does not exist")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise UserError(f"config {path} is not a mapping")
    return raw


def _get(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _default_group(config: dict[str, Any], group: str) -> str | None:
    for entry in config.get("defaults") or []:
        if isinstance(entry, dict) and group in entry:
            return str(entry[group]).removesuffix(".yaml")
    return None


def resolve_cell(
    spec: CellSpec,
    configs: Path | None = None,
    *,
    devices: int = 1,
    nodes: int = 1,
    env: dict[str, str] | None = None,
) -> ResolvedCell:
    """Derive a cell's method, backbone, dataset, N and budget plan.

    Args:
        spec: the cell as written in its list.
        configs: the ``yaml_configs`` folder.
        devices: devices per node the run will use (the global batch scales with it).
        nodes: nodes the run will use.
        env: where ``{VAR}`` placeholders are looked up (default: the environment).

    Returns:
        The :class:`ResolvedCell`.
    """
    root = configs or default_configs_dir()
    env = dict(os.environ) if env is None else env
    config = read_yaml(root / f"{spec.config}.yaml")
    group = spec.overrides.get("data") or _default_group(config, "data")
    data = read_yaml(root / "data" / f"{group}.yaml") if group else {}

    def value(key: str, default: Any = None) -> Any:
        for source in (spec.overrides.get(key), _get(data, key), _get(config, key)):
            if source is not None:
                return source
        return default

    method = value("method")
    if not method:
        raise UserError(f"config {spec.config!r} of cell {spec.id!r} names no method")
    dataset = str(value("data.dataset"))
    fraction = float(value("data.fraction", -1))
    fraction = 1.0 if fraction == -1 else fraction
    if spec.N is None and dataset not in TRAIN_SIZES:
        raise UserError(
            f"cell {spec.id!r}: dataset {dataset!r} has no catalog size; give the cell N"
        )
    size = TRAIN_SIZES.get(dataset)
    n = (
        spec.N
        if spec.N is not None
        else max(1, min(train_size(dataset), round_half_up(fraction * train_size(dataset))))
    )
    batch = int(value("optimizer.batch_size", 256)) * int(value("accumulate_grad_batches", 1))
    # --devices / --nodes say where it will run; only a cell's own override beats them.
    run_devices = int(spec.overrides.get("devices", devices))
    global_batch = batch * run_devices * int(spec.overrides.get("num_nodes", nodes))
    mode = str(value("budget.mode", "images"))
    budget = value("budget.C")
    plan = plan_budget(
        None if budget is None else parse_count(budget, "budget.C"),
        n,
        global_batch,
        N_ref=size or n,
        mode=mode,
        epochs=value("budget.epochs"),
    )
    return ResolvedCell(
        spec=spec,
        method=str(method),
        backbone=str(value("backbone.name")),
        dataset=dataset,
        pretrain_set=str(spec.pretrain_set or dataset),
        fraction=fraction,
        plan=plan,
        missing=tuple(_missing(spec, env)),
    )


def _missing(spec: CellSpec, env: dict[str, str]) -> list[str]:
    out = [f"{name} (unset)" for name in spec.placeholders() if name not in env]
    for key, raw in spec.overrides.items():
        if raw is None:  # a path switched off (data.val_path: null)
            continue
        text = fill(raw, env)
        if key.endswith("_path") and "{" not in text and not Path(text).exists():
            out.append(f"{key}={text} (not found)")
    return out
