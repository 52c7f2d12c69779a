# SPDX-License-Identifier: MIT
"""The paper's experiment cell lists: ``yaml_configs/experiments/<table>.yaml`` read into cells.

A list names the paper table it reproduces, a ``base`` (overrides and probes every cell shares) and
``axes``, each a list of values with a ``key``; the cells are the product of the axes in order, and
a cell's id is its keys joined by ``-`` (``simclr-f0.1``). An axis value may set ``config`` (the
pretraining config name), ``overrides`` (hydra ``key: value``, merged over the base's), ``probes``
(replacing the base's), ``N`` (unique images, for sets the catalog does not know) and
``pretrain_set`` (the set's name when ``data.train_path`` points at a built set); ``linear``
holds the ``main_linear.py`` overrides of every probe (solo-learn's 100 epochs, decay at 60 and
80). Override values may hold ``{VAR}`` placeholders that the environment fills. A list with
``kind: distance`` (Table 3) holds distance computations instead of pretrainings: its axis values
set ``metric`` (``vdna:<extractor>`` or ``fid:<extractor>``), ``pretrain_set`` and ``downstream``,
and its ``distance`` mapping the index path (``{set}`` is the set's name), the sample cap and the
bins. Everything here is parsing: deriving N, E, D and steps is
:mod:`solo_diversity.experiments.plan`, running distances
:mod:`solo_diversity.experiments.distances`.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from solo_diversity.config.overrides import configs_dir as default_configs_dir
from solo_diversity.errors import UserError

PROBE_MODES = ("protocol", "features")
_SPEC_KEYS = {
    "table",
    "paper",
    "title",
    "description",
    "data",
    "base",
    "axes",
    "linear",
    "kind",
    "distance",
    "baselines",
}
KINDS = ("pretrain", "distance")
_VALUE_KEYS = {"key", "config", "overrides", "probes", "N", "pretrain_set"}
_DISTANCE_VALUE_KEYS = {"key", "metric", "pretrain_set", "downstream"}
_DISTANCE_KEYS = {"index", "max_samples", "bins"}
_PROBE_KEYS = {"dataset", "label_fraction", "mode"}
_PLACEHOLDER = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")


@dataclass(frozen=True)
class Probe:
    """The evaluation that follows a pretraining: a linear probe on ``dataset``.

    Attributes:
        dataset: the probe's dataset (its ``data.dataset``).
        label_fraction: share of the training labels (``data.label_fraction``).
        mode: ``protocol`` (solo-learn's linear evaluation, the paper's) or ``features``.
    """

    dataset: str
    label_fraction: float = 1.0
    mode: str = "protocol"

    def overrides(self, pretrain_dataset: str | None = None) -> list[str]:
        """``main_linear.py`` overrides for this probe (data.dataset only when it differs)."""
        out = [] if self.dataset == pretrain_dataset else [f"data.dataset={self.dataset}"]
        return [*out, f"data.label_fraction={self.label_fraction:g}", f"probe.mode={self.mode}"]

    def label(self) -> str:
        return f"{self.dataset}@{self.label_fraction:g}"


@dataclass(frozen=True)
class CellSpec:
    """One pretraining run of a list and the probes that follow it, as written in the list."""

    id: str
    table: str
    config: str
    overrides: dict[str, Any]
    probes: tuple[Probe, ...]
    N: int | None = None
    pretrain_set: str | None = None

    def override_args(self, env: dict[str, str] | None = None) -> list[str]:
        """``key=value`` hydra overrides, placeholders filled from ``env`` (default: os.environ)."""
        return [f"{key}={fill(value, env)}" for key, value in self.overrides.items()]

    @property
    def untrained(self) -> str | None:
        """A ``baselines:`` cell's kind (``raw_pixels`` or ``random_init``); None for the rest."""
        kind = self.overrides.get("++baseline")
        return None if kind is None else str(kind)

    def placeholders(self) -> list[str]:
        """The ``{VAR}`` names this cell's overrides need."""
        names = (_PLACEHOLDER.findall(str(v)) for v in self.overrides.values())
        return sorted({n for found in names for n in found})


@dataclass(frozen=True)
class DistanceSpec:
    """One distance of a ``kind: distance`` list: a metric between a pretraining and a downstream.

    Attributes:
        id: the cell id (its axis keys joined by ``-``).
        table: the list's name.
        metric: ``vdna:<extractor>`` or ``fid:<extractor>``.
        pretrain: the pretraining set's name (``imagenet``).
        downstream: the downstream set's name (``stanford_cars``).
        index: the index path template, ``{set}`` standing for a set's name.
        max_samples: the cap on images per set (the paper's 50,000).
        bins: VisualDNA histogram bins.
    """

    id: str
    table: str
    metric: str
    pretrain: str
    downstream: str
    index: str = "{INDEX_DIR}/{set}_train.h5"
    max_samples: int = 50_000
    bins: int = 1000

    @property
    def kind(self) -> str:
        """``vdna`` or ``fid``."""
        return self.metric.partition(":")[0]

    @property
    def extractor(self) -> str:
        return self.metric.partition(":")[2] or "inception"

    def index_of(self, name: str, env: dict[str, str] | None = None) -> str:
        """The index path of the set ``name``, placeholders filled from ``env``."""
        return fill(self.index.replace("{set}", name), env)


@dataclass(frozen=True)
class ExperimentList:
    """A table's cell list: its cells (or distances), and the paper table it reproduces."""

    table: str
    paper: str
    title: str
    data: dict[str, str]
    cells: tuple[CellSpec, ...] = field(default_factory=tuple)
    linear: dict[str, Any] = field(default_factory=dict)
    kind: str = "pretrain"
    distances: tuple[DistanceSpec, ...] = field(default_factory=tuple)

    def distance(self, cell_id: str) -> DistanceSpec:
        for spec in self.distances:
            if spec.id == cell_id:
                return spec
        ids = ", ".join(d.id for d in self.distances[:8])
        raise UserError(f"{self.table} has no cell {cell_id!r}; its cells are {ids}, ...")

    def linear_args(self) -> list[str]:
        """``main_linear.py`` overrides every probe of the list shares (epochs, schedule)."""
        return [f"{key}={fill(value)}" for key, value in self.linear.items()]

    def cell(self, cell_id: str) -> CellSpec:
        for cell in self.cells:
            if cell.id == cell_id:
                return cell
        ids = ", ".join(c.id for c in self.cells[:8])
        more = ", ..." if len(self.cells) > 8 else ""
        raise UserError(f"{self.table} has no cell {cell_id!r}; its cells are {ids}{more}")


def fill(value: Any, env: dict[str, str] | None = None) -> str:
    """``value`` as an override string, each ``{VAR}`` replaced from ``env`` when set there."""
    env = dict(os.environ) if env is None else env
    text = _format(value)
    return _PLACEHOLDER.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def _format(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ",".join(_format(v) for v in value) + "]"
    return str(value)


def experiments_dir(configs: Path | None = None) -> Path:
    """``<configs>/experiments``; ``configs`` defaults to the repository's ``yaml_configs``."""
    return (configs or default_configs_dir()) / "experiments"


def list_names(configs: Path | None = None) -> list[str]:
    """The cell lists that exist, sorted."""
    folder = experiments_dir(configs)
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_experiment(name: str, configs: Path | None = None) -> ExperimentList:
    """Read and expand ``<configs>/experiments/<name>.yaml``.

    Args:
        name: the list's name (a table or figure, e.g. ``table1_cifar100``).
        configs: the ``yaml_configs`` folder.

    Returns:
        The :class:`ExperimentList` with every cell of the product of its axes.
    """
    path = experiments_dir(configs) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(list_names(configs)) or "none"
        raise UserError(f"unknown experiment table {name!r}; choose one of {known}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} must be a mapping with table, paper, base and axes")
    _only(raw, _SPEC_KEYS, str(path))
    for key in ("paper", "axes"):
        if key not in raw:
            raise UserError(f"{path} has no {key!r} key")
    if raw.get("table", name) != name:
        raise UserError(
            f"{path} says table: {raw['table']!r}; it must match the file name {name!r}"
        )
    kind = str(raw.get("kind", "pretrain"))
    if kind not in KINDS:
        raise UserError(f"{path}: kind {kind!r} is not one of {', '.join(KINDS)}")
    title = str(raw.get("title", name))
    data = {str(k): str(v) for k, v in (raw.get("data") or {}).items()}
    if kind == "distance":
        distances = tuple(_expand_distances(name, raw.get("distance"), raw["axes"], str(path)))
        _unique([d.id for d in distances], str(path))
        return ExperimentList(name, str(raw["paper"]), title, data, kind=kind, distances=distances)
    base = raw.get("base") or {}
    _only(base, {"config", "overrides", "probes"}, f"{path}: base")
    cells = tuple(_expand(name, base, raw["axes"], str(path)))
    cells += tuple(_baseline_cells(cells, raw.get("baselines"), str(path)))
    _unique([c.id for c in cells], str(path))
    return ExperimentList(
        table=name,
        paper=str(raw["paper"]),
        title=title,
        data=data,
        cells=cells,
        linear=_mapping(raw.get("linear"), f"{path}: linear"),
    )


def _unique(ids: list[str], path: str) -> None:
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise UserError(f"{path}: cell ids repeat ({', '.join(dup)}); give each axis value a key")


def _axis_values(axes: Any, allowed: set[str], where: str) -> list[list[dict[str, Any]]]:
    if not isinstance(axes, list) or not axes:
        raise UserError(f"{where}: axes must be a non-empty list of {{name, values}}")
    choices = []
    for axis in axes:
        _only(axis, {"name", "values"}, f"{where}: axis")
        values = axis.get("values")
        if not isinstance(values, list) or not values:
            raise UserError(f"{where}: axis {axis.get('name')!r} has no values")
        for value in values:
            _only(value, allowed, f"{where}: axis {axis.get('name')!r}")
            if "key" not in value:
                raise UserError(f"{where}: a value of axis {axis.get('name')!r} has no key")
        choices.append(values)
    return choices


def _expand_distances(table: str, raw: Any, axes: Any, where: str) -> list[DistanceSpec]:
    settings = {} if raw is None else raw
    _only(settings, _DISTANCE_KEYS, f"{where}: distance")
    out = []
    for combo in itertools.product(*_axis_values(axes, _DISTANCE_VALUE_KEYS, where)):
        merged: dict[str, Any] = {}
        for value in combo:
            merged.update({k: v for k, v in value.items() if k != "key"})
        cell_id = "-".join(str(v["key"]) for v in combo)
        lacking = [k for k in ("metric", "pretrain_set", "downstream") if k not in merged]
        if lacking:
            raise UserError(f"{where}: distance cell {cell_id!r} has no {lacking[0]}")
        metric = str(merged["metric"])
        kind, _, extractor = metric.partition(":")
        if kind not in ("vdna", "fid") or (kind == "vdna" and not extractor):
            raise UserError(f"{where}: metric {metric!r} is not vdna:<extractor> or fid[:<name>]")
        out.append(
            DistanceSpec(
                id=cell_id,
                table=table,
                metric=metric,
                pretrain=str(merged["pretrain_set"]),
                downstream=str(merged["downstream"]),
                index=str(settings.get("index", DistanceSpec.index)),
                max_samples=int(settings.get("max_samples", DistanceSpec.max_samples)),
                bins=int(settings.get("bins", DistanceSpec.bins)),
            )
        )
    return out


def _mapping(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{where} must be a mapping of main_linear.py overrides")
    return {str(k): v for k, v in raw.items()}


def _only(mapping: Any, allowed: set[str], where: str) -> None:
    if not isinstance(mapping, dict):
        raise UserError(f"{where} must be a mapping, got {mapping!r}")
    extra = sorted(set(mapping) - allowed)
    if extra:
        raise UserError(
            f"{where} has unknown key {extra[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )


def _probes(raw: Any, where: str) -> tuple[Probe, ...]:
    if not isinstance(raw, list) or not raw:
        raise UserError(f"{where}: probes must be a non-empty list of {{dataset, label_fraction}}")
    out = []
    for item in raw:
        _only(item, _PROBE_KEYS, f"{where}: probe")
        if "dataset" not in item:
            raise UserError(f"{where}: probe {item!r} has no dataset")
        fraction = float(item.get("label_fraction", 1.0))
        if not 0 < fraction <= 1:
            raise UserError(f"{where}: label_fraction={fraction} must be in (0, 1]")
        mode = str(item.get("mode", "protocol"))
        if mode not in PROBE_MODES:
            raise UserError(f"{where}: probe mode {mode!r} is not one of {', '.join(PROBE_MODES)}")
        out.append(Probe(str(item["dataset"]), fraction, mode))
    return tuple(out)


def _baseline_cells(cells: tuple[CellSpec, ...], raw: Any, where: str) -> list[CellSpec]:
    """``baselines: [raw_pixels, random_init]``: untrained runs
    (:mod:`solo_diversity.run.baselines`) probed like the cells, one per method (its probe recipe
    sets the LR): ``<method>-<kind>``, built from the method's first cell at the base's full set.
    """
    if raw is None:
        return []
    if not isinstance(raw, list) or not cells:
        raise UserError(f"{where}: baselines must be a list such as [raw_pixels, random_init]")
    firsts: dict[str, CellSpec] = {}
    for cell in cells:
        firsts.setdefault(cell.id.split("-")[0], cell)
    out = []
    for kind in raw:
        if kind not in ("raw_pixels", "random_init"):  # solo_diversity.run.baselines.BASELINES
            raise UserError(f"{where}: baseline {kind!r} is not raw_pixels or random_init")
        for method, first in firsts.items():
            overrides = {**first.overrides, "data.fraction": -1, "++baseline": kind}
            out.append(
                CellSpec(
                    id=f"{method}-{kind}",
                    table=first.table,
                    config=first.config,
                    overrides=overrides,
                    probes=first.probes,
                )
            )
    return out


def _expand(table: str, base: dict[str, Any], axes: Any, where: str) -> list[CellSpec]:
    choices = _axis_values(axes, _VALUE_KEYS, where)
    cells = []
    for combo in itertools.product(*choices):
        merged: dict[str, Any] = {"overrides": dict(base.get("overrides") or {})}
        for key in ("config", "probes"):
            if key in base:
                merged[key] = base[key]
        for value in combo:
            merged["overrides"].update(value.get("overrides") or {})
            merged.update({k: v for k, v in value.items() if k not in ("overrides", "key")})
        cell_id = "-".join(str(v["key"]) for v in combo)
        if "config" not in merged:
            raise UserError(f"{where}: cell {cell_id!r} has no config (set it in base or an axis)")
        cells.append(
            CellSpec(
                id=cell_id,
                table=table,
                config=str(merged["config"]),
                overrides=merged["overrides"],
                probes=_probes(merged.get("probes"), f"{where}: cell {cell_id!r}"),
                N=None if merged.get("N") is None else int(merged["N"]),
                pretrain_set=merged.get("pretrain_set"),
            )
        )
    return cells
