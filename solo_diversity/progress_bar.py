# SPDX-License-Identifier: MIT
"""Progress of the long loops outside training: index builds and feature extraction.

On a terminal a rich bar (count, rate, elapsed, ETA) redraws in place and disappears when done.
Elsewhere (a SLURM log, a test's capture) a bar cannot redraw, so at most one log line per
``every_s`` seconds says how far the loop is: a log is never flooded. Lightning's own bar, when
one is live, keeps the terminal, and the loop logs instead.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TypeVar

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

log = logging.getLogger(__name__)
T = TypeVar("T")


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
            log.info("%s: %s%s (%.2f/s)", self.label, f"{self.completed + self.done:,}", of,
                     self.done / max(now - self.start, 1e-9))


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
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
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
