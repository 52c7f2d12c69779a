# SPDX-License-Identifier: MIT
"""What a cell will run: its composed config, recipe, N, and the budget plan (E, D, steps, warmup).

A cell is resolved by composing its pretraining config exactly as ``main_pretrain.py`` does:
hydra's compose API over ``yaml_configs`` with the cell's overrides and the devices and nodes it
will run on, so the recipe groups (``scale``, ``arch``, ``recipe``) and the data group are
followed (:func:`~solo_diversity.config.cell.read_cell` composes and reads it once into a
:class:`~solo_diversity.config.cell.CellConfig`). From the composed config come the method,
backbone, dataset, recipe, optimizer, the global batch (``optimizer.global_batch_size``, which
``--devices``/``--nodes`` leave unchanged; an explicit per-device ``optimizer.batch_size`` keeps
solo-learn's meaning and wins), the budget keys and the warmup in steps. N is the cell's own
``N`` or ``round(fraction * size)`` of the catalog's dataset size, as the index's subset takes
it, or of the built index itself when the cell names its own ``data.train_path`` and that file
exists (Figure 3's sets); N_ref is ``budget.reference_size`` or that size. A cell's ``run_key``
names the pretraining run alone, so lists that share a run (Table 2, Table 4, Supp. Table 3 ...)
share its checkpoint. Extra overrides of a sweep (``--set``) are composed in too, so the plan is
the one that trains, and every one that can change what trains is part of the run key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from solo_diversity.budget.plan import BudgetPlan
from solo_diversity.config.cell import CellConfig, Recipe, read_cell
from solo_diversity.config.overrides import budget_overrides
from solo_diversity.errors import UserError
from solo_diversity.evaluation.recipes import ProbeRecipe, probe_recipe, scale_of_dataset
from solo_diversity.experiments.cells import CellSpec, default_configs_dir, fill
from solo_diversity.index import open_index
from solo_diversity.index.catalog import TRAIN_SIZES, train_size
from solo_diversity.index.format import round_half_up

_RUN_KEYS = (
    "data",
    "data.fraction",
    "backbone.name",
    "budget.C",
    "budget.mode",
    "budget.epochs",
    "budget.epoch_keys",
)
# Extra overrides that cannot change what trains (where the data is read from, how many loader
# processes, what is logged and where checkpoints go): they leave the run key as it is.
NEUTRAL_EXTRAS = (
    "data.train_path",
    "data.val_path",
    "data.num_workers",
    "loggers",
    "wandb",
    "checkpoint",
    "auto_resume",
)
_PLAIN = re.compile(r"^[\w\-+./@%~:]*$")


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
    recipe: Recipe = Recipe("none", "cifar", "resnet", "")
    optimizer: str = "lars"
    lr: float = 0.0
    weight_decay: float = 0.0
    warmup_steps: int = 0
    record: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    extra: tuple[str, ...] = ()

    @property
    def shaping_extras(self) -> list[str]:
        """The extra overrides that can change what trains (all but :data:`NEUTRAL_EXTRAS`)."""
        return sorted(a for a in self.extra if not _neutral(_override_key(a)))

    @property
    def run_key(self) -> str:
        """A readable, unique name of the pretraining run (config and resolved values).

        N is the list's own N where it gives one, so a run keeps its folder once its set is built
        and the plan reads N from the index. Extra overrides that shape the run join the digest
        (a run without them keeps the key it always had).
        """
        rest = {k: v for k, v in self.spec.overrides.items() if k not in _RUN_KEYS}
        n = self.spec.N if self.spec.N is not None else self.plan.N
        parts: list[Any] = [
            self.spec.config,
            self.pretrain_set,
            self.backbone,
            n,
            self.plan.C,
            self.plan.mode,
            rest,
            self.plan.epoch_keys,
        ]
        if self.shaping_extras:
            parts.append(self.shaping_extras)
        canon = json.dumps(parts, sort_keys=True, default=str)
        digest = hashlib.sha1(canon.encode()).hexdigest()[:6]
        head = self.spec.untrained or self.method  # a baseline is no run of the method
        return f"{head}-{self.pretrain_set}-{self.backbone}-N{n}-C{self.plan.C / 1e6:g}M-{digest}"

    @property
    def probe(self) -> ProbeRecipe:
        """The linear probe's LR and weight decay for this method at the recipe's scale."""
        return probe_recipe(self.method, self.recipe.scale, self.recipe.arch)

    def probe_args(self) -> list[str]:
        """``main_linear.py`` overrides of the probe recipe (LR, and weight decay when set)."""
        probe = self.probe
        out = [f"optimizer.lr={probe.lr:g}"]
        decay = [f"optimizer.weight_decay={probe.weight_decay:g}"] if probe.weight_decay else []
        return out + decay

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
            "recipe": self.recipe.name,
            "recipe_source": self.recipe.source,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "N": self.plan.N,
            "N_ref": self.plan.N_ref,
            "C": self.plan.C,
            "E": self.plan.epochs,
            "D": self.plan.diversity,
            "steps": self.plan.steps,
            "global_batch": self.plan.global_batch,
            "mode": self.plan.mode,
            "epoch_keys": self.plan.epoch_keys,
            "warmup_steps": self.warmup_steps,
            "probes": [
                {
                    "dataset": p.dataset,
                    "label_fraction": p.label_fraction,
                    "mode": p.mode,
                    "overrides": [*self.probe_args(), *p.overrides(self.dataset)],
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


def _override(key: str, value: Any) -> str:
    """One hydra override; a string value that hydra's grammar would misread is quoted."""
    text = fill(value, {})
    if isinstance(value, str) and not _PLAIN.match(text):
        text = "'" + text.replace("'", "\\'") + "'"
    return f"{key}={text}"


def _neutral(key: str) -> bool:
    """Whether an override of ``key`` leaves what trains unchanged (:data:`NEUTRAL_EXTRAS`)."""
    return any(key == k or key.startswith(k + ".") for k in NEUTRAL_EXTRAS)


def _override_key(arg: str) -> str:
    """``budget.C`` of ``++budget.C=1280`` (hydra's ``+``, ``++`` and ``~`` prefixes dropped)."""
    return arg.partition("=")[0].lstrip("+~")


def compose_overrides(
    spec: CellSpec, devices: int, nodes: int, extra: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The overrides a cell's pretraining is composed with (placeholders left unfilled).

    ``extra`` (a sweep's ``--set``) comes last, as on the pretraining command line, so it wins.
    """
    out = [_override(k, v) for k, v in spec.overrides.items()]
    out += [] if "devices" in spec.overrides else [f"devices={devices}"]
    out += [] if "num_nodes" in spec.overrides else [f"++num_nodes={nodes}"]
    return tuple(budget_overrides([*out, *extra]))


def compose_cell(
    spec: CellSpec,
    configs: Path | None = None,
    *,
    devices: int = 1,
    nodes: int = 1,
    extra: tuple[str, ...] = (),
) -> CellConfig:
    """The cell's pretraining config, composed by hydra as ``main_pretrain.py`` composes it."""
    root = (configs or default_configs_dir()).resolve()
    return read_cell(root, spec.config, compose_overrides(spec, devices, nodes, extra))


def _recipe(cell: CellConfig, config: str) -> Recipe:
    """The composed recipe, or one named after ``config`` for a config without recipe groups."""
    if cell.recipe is not None:
        return cell.recipe
    arch = "vit" if cell.backbone.startswith("vit") else "resnet"
    return Recipe(config, scale_of_dataset(cell.dataset), arch, "")


def resolve_cell(
    spec: CellSpec,
    configs: Path | None = None,
    *,
    devices: int = 1,
    nodes: int = 1,
    env: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> ResolvedCell:
    """Compose a cell's config and derive its recipe, N, budget plan and warmup steps.

    Args:
        spec: the cell as written in its list.
        configs: the ``yaml_configs`` folder.
        devices: devices per node the run will use (a recipe's global batch stays the same).
        nodes: nodes the run will use.
        env: where ``{VAR}`` placeholders are looked up (default: the environment).
        extra: a sweep's extra pretraining overrides (``--set``), composed in after the cell's.

    Returns:
        The :class:`ResolvedCell`.
    """
    env = dict(os.environ) if env is None else env
    cell = compose_cell(spec, configs, devices=devices, nodes=nodes, extra=extra)
    if not cell.method:
        raise UserError(f"config {spec.config!r} of cell {spec.id!r} names no method")
    dataset, fraction = cell.dataset, cell.fraction
    built = _built_index(spec, extra, env)
    size, unusable = _index_size(built)
    # the list's N stands for its fraction, unless the sweep sets another fraction
    listed = None if any(_override_key(a) == "data.fraction" for a in extra) else spec.N
    if size is None and listed is None and dataset not in TRAIN_SIZES:
        raise UserError(
            f"cell {spec.id!r}: dataset {dataset!r} has no catalog size; give the cell N"
        )
    n = _cell_n(listed, dataset, fraction, size)
    try:
        plan = cell.budget_plan(n, size or TRAIN_SIZES.get(dataset))
    except UserError as err:
        if size is None or (listed is None and dataset not in TRAIN_SIZES):
            raise
        unusable.append(f"data.train_path={built} ({err})")  # the run would stop the same way
        plan = cell.budget_plan(_cell_n(listed, dataset, fraction, None), TRAIN_SIZES.get(dataset))
    warmup = 0 if cell.warmup_epochs is None else plan.epochs_to_steps(cell.warmup_epochs)
    return ResolvedCell(
        spec=spec,
        method=cell.method,
        backbone=cell.backbone,
        dataset=dataset,
        pretrain_set=str(spec.pretrain_set or dataset),
        fraction=fraction,
        plan=plan,
        missing=(*_missing(spec, env, extra), *unusable),
        recipe=_recipe(cell, spec.config),
        optimizer=cell.optimizer,
        lr=cell.lr,
        weight_decay=cell.weight_decay,
        warmup_steps=warmup,
        record=cell.record,
        extra=tuple(extra),
    )


def _built_index(spec: CellSpec, extra: tuple[str, ...], env: dict[str, str]) -> Path | None:
    """The index a cell trains on when its list names one (a built set) and it exists."""
    if "data.train_path" not in spec.overrides:
        return None
    given = [a.partition("=")[2] for a in extra if _override_key(a) == "data.train_path"]
    path = Path(given[-1] if given else fill(spec.overrides["data.train_path"], env))
    return path if "{" not in str(path) and path.is_file() else None


def _cell_n(listed: int | None, dataset: str, fraction: float, size: int | None) -> int:
    """N: the fraction of the built index (``size``), else the list's own N, else of the catalog."""
    if size is None and listed is not None:
        return listed
    size = size if size is not None else train_size(dataset)
    return max(1, min(size, round_half_up(fraction * size)))


def _index_size(path: Path | None) -> tuple[int | None, list[str]]:
    """The entries of a built set's index, or what makes it unusable (the cell cannot run)."""
    if path is None:
        return None, []
    try:
        return len(open_index(path)), []
    except UserError as err:
        return None, [f"data.train_path={path} (unreadable: {err})"]


def _missing(spec: CellSpec, env: dict[str, str], extra: tuple[str, ...] = ()) -> list[str]:
    """What a cell needs that is not there: unset placeholders, paths that do not exist.

    A key that ``extra`` sets is the sweep's, so the cell's own value of it is not needed.
    """
    replaced = {_override_key(a) for a in extra}
    kept = {k: v for k, v in spec.overrides.items() if k not in replaced}
    unset = [n for n in spec.placeholders() if n not in env]
    out = [f"{n} (unset)" for n in unset if any(f"{{{n}}}" in str(v) for v in kept.values())]
    for key, raw in kept.items():
        if raw is None:  # a path switched off (data.val_path: null)
            continue
        text = fill(raw, env)
        if key.endswith("_path") and "{" not in text and not Path(text).exists():
            out.append(f"{key}={text} (not found)")
    return out
