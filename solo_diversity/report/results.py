# SPDX-License-Identifier: MIT
"""Probe result lines (the JSONL that ``main_linear.py`` appends) read and assigned to table slots.

A line is assigned by, in order: its ``run_key`` key, or a ``run_key`` that is one folder of its
``checkpoint`` path (the scripts pretrain into ``<root>/<run_key>/...``), then its probe's
``dataset`` and ``label_fraction``; failing both, by the attributes every probe line carries
(``method``, ``backbone``, ``C``, ``N``, ``dataset``, ``label_fraction``). A line that fits several
cells of one table (Figure 3's built sets share N) is ambiguous and left out, and said so; kNN
lines (``knn_run``'s) are set aside, as the tables are linear probes. A line in a run's folder
whose own budget C differs from that run's cell (trained under an override of the budget) is not
that cell's: it is filed by its own values, and said so.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solo_diversity.errors import UserError
from solo_diversity.experiments.cells import Probe
from solo_diversity.report.match import Slot

log = logging.getLogger(__name__)

MATCH_KEYS = ("method", "C", "N", "dataset", "label_fraction")


@dataclass(frozen=True)
class Result:
    """One probe line: where it is in the file, its top-1, seed and probe mode."""

    line: int
    record: dict[str, Any]

    @property
    def acc1(self) -> float:
        return float(self.record["acc1"])

    @property
    def seed(self) -> Any:
        return self.record.get("seed")

    @property
    def probe_mode(self) -> str:
        return str(self.record.get("probe_mode") or "unknown")


@dataclass
class Assignment:
    """Results per slot label, and the lines that found no slot or too many."""

    by_slot: dict[str, list[Result]] = field(default_factory=lambda: defaultdict(list))
    unmatched: list[Result] = field(default_factory=list)
    ambiguous: list[tuple[Result, list[str]]] = field(default_factory=list)
    knn: list[Result] = field(default_factory=list)
    off_plan: list[tuple[Result, str]] = field(default_factory=list)


def read_results(path: Path) -> list[Result]:
    """Read a results JSONL file; blank lines are skipped.

    Args:
        path: the file the probes append to.

    Returns:
        One :class:`Result` per line.
    """
    if not path.is_file():
        raise UserError(f"results file {path} does not exist")
    out = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: not a JSON line ({err.msg})") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}:{number}: a result line must be a JSON object")
        if not isinstance(record.get("acc1"), (int, float)):
            raise UserError(f"{path}:{number}: the line has no numeric acc1")
        out.append(Result(number, record))
    return out


def _run_key_of(record: dict[str, Any], keys: set[str]) -> str | None:
    if record.get("run_key") in keys:
        return str(record["run_key"])
    parts = Path(str(record.get("checkpoint") or "")).parts
    return next((p for p in parts if p in keys), None)


def fits_probe(record: dict[str, Any], probe: Probe) -> bool:
    """Whether a result line is a probe on ``probe``'s set and label fraction (any probe mode)."""
    return (
        record.get("dataset") == probe.dataset
        and float(record.get("label_fraction") or 1.0) == probe.label_fraction
    )


def _probe_fits(slot: Slot, record: dict[str, Any]) -> bool:
    return fits_probe(record, slot.probe)


def _attributes_fit(slot: Slot, record: dict[str, Any]) -> bool:
    if any(record.get(k) is None for k in MATCH_KEYS):
        return False
    cell = slot.cell
    if record.get("backbone") not in (None, cell.backbone):
        return False
    if record.get("pretrain_dataset") not in (None, cell.pretrain_set):
        return False
    n = int(record["N"])
    return (
        record["method"] == cell.method
        and int(record["C"]) == cell.plan.C
        and abs(n - cell.plan.N) <= 0.005 * cell.plan.N
        and _probe_fits(slot, record)
    )


def _off_plan(record: dict[str, Any], slots: list[Slot], key: str) -> str | None:
    """Why a line found by its run key did not train that run's plan (None when it did).

    Only a fixed budget is compared: in ``epochs`` mode C follows the index's own N.
    """
    cell = next(s.cell for s in slots if s.cell.run_key == key)
    trained = record.get("C")
    if trained is None or cell.plan.mode != "images" or int(trained) == cell.plan.C:
        return None
    return f"it trained C={int(trained):,}, the cell {cell.spec.id} C={cell.plan.C:,}"


def assign(results: list[Result], slots: list[Slot]) -> Assignment:
    """Give each result line the slots (of every table) whose experiment produced it.

    A line fills every table that shares its run (Table 2's runs are Table 5's). Within one table
    a line that fits more than one slot is ambiguous.
    """
    out = Assignment()
    keys = {s.cell.run_key for s in slots}
    for result in results:
        if "distance_function" in result.record:  # a kNN line: the tables are linear probes
            out.knn.append(result)
            continue
        key = _run_key_of(result.record, keys)
        if key is not None and (why := _off_plan(result.record, slots, key)) is not None:
            out.off_plan.append((result, why))
            log.warning("line %d is in run %s's folder but %s", result.line, key, why)
            key = None
        if key is not None:
            hits = [s for s in slots if s.cell.run_key == key and _probe_fits(s, result.record)]
        else:
            hits = [s for s in slots if _attributes_fit(s, result.record)]
        per_table: dict[str, list[Slot]] = defaultdict(list)
        for slot in hits:
            per_table[slot.cell.spec.table].append(slot)
        clear = {t: s for t, s in per_table.items() if len(s) == 1}
        for table, found in per_table.items():
            if len(found) > 1:
                out.ambiguous.append((result, [s.label for s in found]))
                log.warning(
                    "line %d fits %d cells of %s; add run_key", result.line, len(found), table
                )
        if not clear and not any(len(s) > 1 for s in per_table.values()):
            out.unmatched.append(result)
        for found in clear.values():
            out.by_slot[found[0].label].append(result)
    return out


def per_seed(results: list[Result]) -> dict[Any, Result]:
    """The last line of each seed (a re-probed cell keeps its newest number)."""
    latest: dict[Any, Result] = {}
    for result in results:
        latest[result.seed] = result
    return latest
