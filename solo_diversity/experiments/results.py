# SPDX-License-Identifier: MIT
"""Probe result lines (the JSONL that ``main_linear.py`` appends), read and told apart.

:mod:`solo_diversity.report.assign` gives them to table slots: by the line's ``run_key``, or
a ``run_key`` that is one folder of its ``checkpoint`` path (the scripts pretrain into
``<root>/<run_key>/...``), then its probe's ``dataset`` and ``label_fraction``; failing both, by
the attributes every probe line carries (``method``, ``backbone``, ``C``, ``N``, ``dataset``,
``label_fraction``). A line that fits several cells of one table (Figure 3's built sets share N)
is ambiguous and left out, and said so; kNN lines (``knn_run``'s) are set aside, as the tables are
linear probes. A line in a run's folder whose own budget C differs from that run's cell (trained
under an override of the budget) is not that cell's: it is filed by its own values, and said so.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solo_diversity.errors import UserError
from solo_diversity.experiments.cells import Probe

log = logging.getLogger(__name__)


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


def fits_probe(record: dict[str, Any], probe: Probe) -> bool:
    """Whether a result line is a probe on ``probe``'s set and label fraction (any probe mode)."""
    return (
        record.get("dataset") == probe.dataset
        and float(record.get("label_fraction") or 1.0) == probe.label_fraction
    )


def per_seed(results: list[Result]) -> dict[Any, Result]:
    """The last line of each seed (a re-probed cell keeps its newest number)."""
    latest: dict[Any, Result] = {}
    for result in results:
        latest[result.seed] = result
    return latest
