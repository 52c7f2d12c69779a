# SPDX-License-Identifier: MIT
"""A table's numbers as machine-readable aggregates: one row per paper cell, as CSV and JSON.

The Markdown and LaTeX tables are for reading; a plot script or a paper's own table wants the
numbers. Each row names the cell (block, row, column, its slot in the cell list), what it measured
(method, backbone, C, N, D), our statistics over seeds (n, mean, sample std with ddof = 1, min,
max, the seeds and probe modes) and the paper's value with our difference to it. A cell without a
result has n = 0 and empty statistics; a cell with one seed has no std. Table 3's distances are
one value per cell (n = 1, no std), their extractor in ``backbone``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from solo_diversity.report.assign import Assignment
from solo_diversity.report.distances import DistancePairing
from solo_diversity.report.match import Pairing
from solo_diversity.report.paper_tables import PaperTable
from solo_diversity.report.render import measured

COLUMNS = (
    "table",
    "block",
    "row",
    "column",
    "cell",
    "method",
    "backbone",
    "C",
    "N",
    "D",
    "n",
    "mean",
    "std",
    "min",
    "max",
    "seeds",
    "probe_modes",
    "paper",
    "diff",
)


def aggregate_rows(pairing: Pairing, assignment: Assignment) -> list[dict[str, Any]]:
    """One row (``COLUMNS``) per paper cell, in the paper's order; None where nothing is known.

    Args:
        pairing: the table's slots.
        assignment: the result lines per slot.
    """
    slots = {s.paper.key: s for s in pairing.slots}
    out = []
    for cell in pairing.paper.cells():
        slot = slots.get(cell.key)
        ours = measured(assignment.by_slot.get(slot.label, [])) if slot else None
        mean = None if ours is None else ours.mean
        out.append(
            {
                "table": pairing.experiment.table,
                "block": cell.block,
                "row": cell.row,
                "column": cell.column,
                "cell": slot.label if slot else None,
                "method": slot.cell.method if slot else cell.method,
                "backbone": slot.cell.backbone if slot else cell.backbone,
                "C": slot.cell.plan.C if slot else cell.C,
                "N": slot.cell.plan.N if slot else cell.N,
                "D": slot.cell.plan.diversity if slot else cell.D,
                "n": 0 if ours is None else ours.n,
                "mean": mean,
                "std": None if ours is None else ours.std,
                "min": None if ours is None else ours.low,
                "max": None if ours is None else ours.high,
                "seeds": None if ours is None else ";".join(ours.seeds),
                "probe_modes": None if ours is None else ";".join(ours.modes),
                "paper": cell.value,
                "diff": None if mean is None or cell.value is None else mean - cell.value,
            }
        )
    return out


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write ``rows`` with a ``COLUMNS`` header; None is an empty field, floats keep every digit."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return path


def write_json(name: str, table: PaperTable, rows: list[dict[str, Any]], path: Path) -> Path:
    """Write the table's identity (cell list, title, source, metric) and ``rows``; None is null."""
    document = {
        "table": name,
        "paper_table": table.id,
        "title": table.title,
        "source": table.source,
        "metric": table.metric,
        "columns": list(COLUMNS),
        "rows": rows,
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    return path


def write_aggregates(pairing: Pairing, assignment: Assignment, stem: Path) -> list[Path]:
    """``<stem>.csv`` and ``<stem>.json`` of one table; returns both paths."""
    rows = aggregate_rows(pairing, assignment)
    return _write(pairing.experiment.table, pairing.paper, rows, stem)


def distance_rows(pairing: DistancePairing, values: dict[str, float]) -> list[dict[str, Any]]:
    """Table 3's cells as ``COLUMNS`` rows: our distance (n = 1) beside the paper's."""
    out = []
    for cell in pairing.paper.cells():
        spec = pairing.cells[cell.key]
        ours = None if spec is None else values.get(spec.id)
        out.append(
            {
                **dict.fromkeys(COLUMNS),
                "table": pairing.experiment.table,
                "block": cell.block,
                "row": cell.row,
                "column": cell.column,
                "cell": None if spec is None else spec.id,
                "backbone": cell.backbone,
                "n": 0 if ours is None else 1,
                "mean": ours,
                "min": ours,
                "max": ours,
                "paper": cell.value,
                "diff": None if ours is None or cell.value is None else ours - cell.value,
            }
        )
    return out


def write_distance_aggregates(
    pairing: DistancePairing, values: dict[str, float], stem: Path
) -> list[Path]:
    """``<stem>.csv`` and ``<stem>.json`` of Table 3; returns both paths."""
    return _write(pairing.experiment.table, pairing.paper, distance_rows(pairing, values), stem)


def _write(name: str, table: PaperTable, rows: list[dict[str, Any]], stem: Path) -> list[Path]:
    return [
        write_csv(rows, stem.parent / f"{stem.name}.csv"),
        write_json(name, table, rows, stem.parent / f"{stem.name}.json"),
    ]
