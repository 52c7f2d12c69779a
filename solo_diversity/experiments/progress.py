# SPDX-License-Identifier: MIT
"""The ``[k/n]`` line that opens each task of ``experiment run``: elapsed time and an ETA.

A sweep of a cell list runs for hours; one line per task says how far it is and when it should
end. The ETA assumes the tasks left take as long as the finished ones did on average, so it is
"unknown" before the first one finishes. Pure functions of numbers, so the text is tested as is.
"""

from __future__ import annotations


def clock(seconds: float) -> str:
    """``seconds`` as ``m:ss``, or ``h:mm:ss`` from an hour on (``3725`` -> ``1:02:05``)."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_seconds(elapsed: float, finished: int, total: int) -> float | None:
    """Seconds left when ``finished`` of ``total`` tasks took ``elapsed``; None before any ends."""
    if finished <= 0:
        return None
    return elapsed / finished * (total - finished)


def progress_line(k: int, n: int, elapsed: float, name: str) -> str:
    """The line that starts task ``k`` of ``n``, ``elapsed`` seconds into the sweep.

    Example: ``[3/8] table1/simclr-f0.1/seed0 (elapsed 4:10, ETA 12:30)``.
    """
    left = eta_seconds(elapsed, k - 1, n)
    eta = "unknown" if left is None else clock(left)
    return f"[{k}/{n}] {name} (elapsed {clock(elapsed)}, ETA {eta})"
