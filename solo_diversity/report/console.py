# SPDX-License-Identifier: MIT
"""Terminal rendering of plans and ledgers (rich tables), shared by the entry points and the CLI."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from solo_diversity.budget import BudgetPlan

# Wide enough for the plan table when output goes to a file or a pipe (rich would assume 80).
console = Console() if sys.stdout is not None and sys.stdout.isatty() else Console(width=160)


def _count(n: float) -> str:
    return f"{n:,.0f}"


def plan_table(
    rows: Sequence[tuple[str, BudgetPlan, dict[str, int]]],
    title: str = "Budget plan",
    notes: Sequence[str] = (),
) -> Table:
    """One row per plan: label, N, C, C_eff, G, steps, E, D and each converted schedule in steps.

    Args:
        rows: (label, plan, {schedule name: steps}) for each run.
        title: the table title.
        notes: lines printed under the table, e.g. which config keys the budget replaced.
    """
    schedule_names = sorted({name for _, _, sched in rows for name in sched})
    table = Table(title=title, caption="\n".join(notes) or None, caption_justify="left")
    columns = ("run", "N", "C", "C_eff", "G", "steps", "E", "D", "epoch_keys", *schedule_names)
    for col in columns:
        table.add_column(col, justify="left" if col in ("run", "epoch_keys") else "right")
    for label, plan, sched in rows:
        table.add_row(
            label,
            _count(plan.N),
            _count(plan.C),
            _count(plan.C_eff),
            str(plan.global_batch),
            _count(plan.steps),
            f"{plan.epochs:,.1f}",
            f"{plan.diversity:.3g}",
            plan.epoch_keys,
            *(_count(sched.get(name, 0)) for name in schedule_names),
        )
    return table


def ledger_table(summary: dict[str, Any]) -> Table:
    """The final ledger: planned versus seen images and steps."""
    table = Table(title="Budget ledger")
    for col in ("", "planned", "seen"):
        table.add_column(col, justify="right")
    table.add_row("images", _count(summary["C_eff"]), _count(summary["images_seen"]))
    table.add_row("optimizer steps", _count(summary["steps"]), _count(summary["optimizer_steps"]))
    table.add_row("match", "", "yes" if summary["match"] else "NO")
    return table
