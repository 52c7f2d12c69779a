# SPDX-License-Identifier: MIT
"""Probe result lines given to the table slots whose experiment produced them.

The rules are those of :mod:`solo_diversity.experiments.results`, which reads the lines: by run
key first, then by the attributes every probe line carries; a line that fits several cells of one
table is ambiguous, a kNN line is set aside, and a line trained under another budget is filed by
its own values.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solo_diversity.experiments.results import Result, fits_probe
from solo_diversity.report.match import Slot

log = logging.getLogger(__name__)

MATCH_KEYS = ("method", "C", "N", "dataset", "label_fraction")


@dataclass
class Assignment:
    """Results per slot label, and the lines that found no slot or too many."""

    by_slot: dict[str, list[Result]] = field(default_factory=lambda: defaultdict(list))
    unmatched: list[Result] = field(default_factory=list)
    ambiguous: list[tuple[Result, list[str]]] = field(default_factory=list)
    knn: list[Result] = field(default_factory=list)
    off_plan: list[tuple[Result, str]] = field(default_factory=list)


def _run_key_of(record: dict[str, Any], keys: set[str]) -> str | None:
    if record.get("run_key") in keys:
        return str(record["run_key"])
    parts = Path(str(record.get("checkpoint") or "")).parts
    return next((p for p in parts if p in keys), None)


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
