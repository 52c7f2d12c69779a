# SPDX-License-Identifier: MIT
"""The paper's published numbers (Hammoud et al., arXiv:2403.13808) as package data, as cells.

Each table or figure is one YAML file in ``solo_diversity/report/paper/``: ``defaults`` every cell
shares, then ``blocks`` (a side-by-side half or a backbone group of the paper's layout), each with
``rows`` and ``columns`` carrying the attributes they fix (method, backbone, pretraining set, C, N,
fraction, probe set, label fraction) and a ``values`` grid (``null`` where the paper prints no
number). :func:`load_paper_table` expands a file into :class:`PaperCell` records, one per number,
each with every attribute set; later sources win: defaults, block, row, column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from solo_diversity.budget.plan import parse_count
from solo_diversity.errors import UserError

_ATTRS = (
    "method",
    "backbone",
    "pretrain_dataset",
    "C",
    "N",
    "fraction",
    "probe_dataset",
    "label_fraction",
    "metric",
    "mode",
    "epochs",
    "epoch_keys",
    "baseline",
    "untrained",
    "ambiguous",
    "text",
)
_TOP_KEYS = {
    "id",
    "title",
    "source",
    "metric",
    "decimals",
    "defaults",
    "row_header",
    "blocks",
    "notes",
    "n_rel_tol",
    "rows",
    "columns",
    "vit_rows",
}


@dataclass(frozen=True)
class PaperCell:
    """One published number and everything that identifies it.

    Attributes:
        table: the table's id (its file name), e.g. ``table1_cifar100``.
        block, row, column: the labels that place it in the paper's layout.
        method, backbone, pretrain_dataset: what was pretrained on what.
        C, N, fraction: the budget in images, the unique images, the share of the set.
        probe_dataset, label_fraction: the linear probe's set and share of its labels.
        metric: ``acc1`` (top-1 %), ``vdna`` or ``fid``.
        value: the number as printed, or None where the paper gives none.
        mode, epochs: ``images`` (C fixed) or ``epochs`` (E fixed, Supp. Fig. 1).
        epoch_keys: the schedule reading a column fixes (``subset``/``reference``), or None: any.
        baseline: the B bar of Figure 3 / Supp. Figure 1.
        untrained: ``raw_pixels`` or ``random_init``: a floor with no pretraining (the cell list's
            ``baselines``), drawn as a level line instead of a point at some D.
        ambiguous: the text extraction leaves the value uncertain.
        text: ``clean``, or ``interleaved`` when the row's characters are mixed with another's.
    """

    table: str
    block: str
    row: str
    column: str
    method: str | None
    backbone: str | None
    pretrain_dataset: str | None
    C: int | None
    N: int | None
    fraction: float | None
    probe_dataset: str | None
    label_fraction: float | None
    metric: str
    value: float | None
    mode: str = "images"
    epochs: float | None = None
    epoch_keys: str | None = None
    baseline: bool = False
    untrained: str | None = None
    ambiguous: bool = False
    text: str = "clean"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.block, self.row, self.column)

    @property
    def D(self) -> float | None:  # noqa: N802 - the paper's symbol
        """N / C, when both are known."""
        if self.N is None:
            return None
        if self.mode == "epochs" and self.epochs:
            return 1.0 / self.epochs
        return self.N / self.C if self.C else None


@dataclass(frozen=True)
class PaperBlock:
    """A block of the layout: row labels (one per row-header column), column labels, cells."""

    label: str
    rows: tuple[tuple[str, ...], ...]
    columns: tuple[str, ...]
    cells: tuple[tuple[PaperCell, ...], ...]


@dataclass(frozen=True)
class PaperTable:
    """A table or figure of the paper."""

    id: str
    title: str
    source: str
    metric: str
    decimals: int
    row_header: tuple[str, ...]
    blocks: tuple[PaperBlock, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    n_rel_tol: float = 0.005

    def cells(self) -> list[PaperCell]:
        """Every cell, block by block, row by row."""
        return [c for b in self.blocks for row in b.cells for c in row]

    def format_value(self, value: float | None) -> str:
        """A number as the paper prints it: the table's decimals, more when the value has them."""
        if value is None:
            return "n/a"
        text = f"{value:.{self.decimals}f}"
        return text if float(text) == value else f"{value:g}"


def paper_table_names() -> list[str]:
    """Ids of the stored tables, sorted."""
    folder = resources.files("solo_diversity.report") / "paper"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def layout_names() -> list[str]:
    """Ids of the project's own layouts (``layouts/``): tables with no published values."""
    folder = resources.files("solo_diversity.report") / "layouts"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_paper_table(name: str) -> PaperTable:
    """Read ``solo_diversity/report/paper/<name>.yaml``, or a layout of ``layouts/``.

    A layout (the mini paper's) is read the same way, its values all null, so the report renders
    it like a paper table with ours in every cell.

    Args:
        name: the table's id, e.g. ``table2_imagenet_yfcc``.

    Returns:
        The :class:`PaperTable` with every cell expanded.
    """
    folder = "paper" if name in paper_table_names() else "layouts"
    if folder == "layouts" and name not in layout_names():
        known = ", ".join([*paper_table_names(), *layout_names()])
        raise UserError(f"no paper table {name!r}; choose one of {known}")
    text = (resources.files("solo_diversity.report") / folder / f"{name}.yaml").read_text()
    raw = yaml.safe_load(text)
    extra = sorted(set(raw) - _TOP_KEYS)
    if extra:
        raise UserError(f"paper table {name}: unknown key {extra[0]!r}")
    defaults = {"metric": raw.get("metric", "acc1"), **(raw.get("defaults") or {})}
    blocks = tuple(_block(name, defaults, b) for b in raw["blocks"])
    return PaperTable(
        id=name,
        title=str(raw.get("title", name)),
        source=str(raw.get("source", "")),
        metric=str(raw.get("metric", "acc1")),
        decimals=int(raw.get("decimals", 1)),
        row_header=tuple(raw.get("row_header") or ()),
        blocks=blocks,
        notes=tuple(raw.get("notes") or ()),
        n_rel_tol=float(raw.get("n_rel_tol", 0.005)),
    )


def _attrs(where: str, mapping: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in mapping.items() if k != "label"}
    extra = sorted(set(out) - set(_ATTRS))
    if extra:
        raise UserError(f"{where}: unknown attribute {extra[0]!r}; allowed: {', '.join(_ATTRS)}")
    return out


def _block(table: str, defaults: dict[str, Any], raw: dict[str, Any]) -> PaperBlock:
    where = f"paper table {table}, block {raw.get('label')!r}"
    rows, columns, values = raw["rows"], raw["columns"], raw["values"]
    if len(values) != len(rows) or any(len(v) != len(columns) for v in values):
        raise UserError(f"{where}: values must be {len(rows)} rows of {len(columns)} numbers")
    block_attrs = {**defaults, **_attrs(where, raw.get("attrs") or {})}
    grid = []
    for row, row_values in zip(rows, values, strict=True):
        row_label = " ".join(str(x) for x in row["label"])
        out = []
        for col, value in zip(columns, row_values, strict=True):
            merged = {**block_attrs, **_attrs(where, row), **_attrs(where, col)}
            out.append(_cell(table, str(raw["label"]), row_label, str(col["label"]), merged, value))
        grid.append(tuple(out))
    return PaperBlock(
        label=str(raw["label"]),
        rows=tuple(tuple(str(x) for x in r["label"]) for r in rows),
        columns=tuple(str(c["label"]) for c in columns),
        cells=tuple(grid),
    )


def _cell(
    table: str, block: str, row: str, column: str, a: dict[str, Any], value: Any
) -> PaperCell:
    return PaperCell(
        table=table,
        block=block,
        row=row,
        column=column,
        method=a.get("method"),
        backbone=a.get("backbone"),
        pretrain_dataset=a.get("pretrain_dataset"),
        C=None if a.get("C") is None else parse_count(a["C"], "C"),
        N=None if a.get("N") is None else int(a["N"]),
        fraction=None if a.get("fraction") is None else float(a["fraction"]),
        probe_dataset=a.get("probe_dataset"),
        label_fraction=None if a.get("label_fraction") is None else float(a["label_fraction"]),
        metric=str(a.get("metric", "acc1")),
        value=None if value is None else float(value),
        mode=str(a.get("mode", "images")),
        epochs=None if a.get("epochs") is None else float(a["epochs"]),
        epoch_keys=None if a.get("epoch_keys") is None else str(a["epoch_keys"]),
        baseline=bool(a.get("baseline", False)),
        untrained=None if a.get("untrained") is None else str(a["untrained"]),
        ambiguous=bool(a.get("ambiguous", False)),
        text=str(a.get("text", "clean")),
    )
