# SPDX-License-Identifier: MIT
"""What the user sees in the terminal: plan and ledger tables, and the progress of long loops.

The tables are shared by the entry points and the CLI. The progress of the loops outside training
(index builds, feature extraction) is a rich bar on a terminal; elsewhere (a SLURM log, a test's
capture) a bar cannot redraw, so at most one log line per ``every_s`` seconds says how far the loop
is and a log is never flooded. Lightning's own bar, when one is live, keeps the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.errors import LiveError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from solo_diversity.budget.plan import BudgetPlan

log = logging.getLogger(__name__)
T = TypeVar("T")


def say(line: str) -> None:
    """One line the user must see even when hydra has silenced logging (stderr, flushed)."""
    print(line, file=sys.stderr, flush=True)


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


class _Throttled:
    """Advance by ``n``; log ``done of total`` when ``every_s`` seconds passed since the last."""

    def __init__(self, label: str, total: int | None, every_s: float, completed: int = 0):
        self.label, self.total, self.every_s = label, total, every_s
        self.completed, self.done, self.start = completed, 0, time.monotonic()
        self.last = self.start

    def __call__(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            of = f" of {self.total:,}" if self.total else ""
            log.info(
                "%s: %s%s (%.2f/s)",
                self.label,
                f"{self.completed + self.done:,}",
                of,
                self.done / max(now - self.start, 1e-9),
            )


@contextlib.contextmanager
def progress(
    label: str,
    total: int | None,
    *,
    every_s: float = 30.0,
    console: Console | None = None,
    completed: int = 0,
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n=1)`` for a loop of ``total`` items (None: unknown).

    Args:
        label: what the loop does, e.g. ``index digits/train.h5``.
        total: items the loop will count, or None.
        every_s: off a terminal, seconds between two log lines.
        console: where the bar draws (default: stderr).
        completed: items already done before this process (a resumed shard); not in the rate.
    """
    console = console or Console(stderr=True)
    throttled = _Throttled(label, total, every_s, completed)
    if not console.is_terminal:
        yield throttled
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns, console=console, transient=True)
    try:
        bar.start()
    except LiveError:  # another live display (Lightning's bar) holds the terminal
        yield throttled
        return
    try:
        task = bar.add_task(label, total=total, completed=completed)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance
    finally:
        bar.stop()


def counted(items: Iterable[T], advance: Callable[[int], None]) -> Iterator[T]:
    """``items`` unchanged, advancing the bar by one for each."""
    for item in items:
        yield item
        advance(1)


def length(items: object) -> int | None:
    """``len(items)`` for a sized collection, None for a stream."""
    return len(items) if isinstance(items, Sized) else None
