# SPDX-License-Identifier: MIT
"""Per-engine pacing: a minimum interval between requests, and exponential backoff on failure.

Search APIs throttle or ban a client that asks too fast (DuckDuckGo answers 403/429, Flickr and
Bing have per-second quotas), and ``img2dataset`` has no limiter of its own, so the query stage
keeps one :class:`RateLimit` per engine. The clock and the sleep are injectable so that tests can
check the arithmetic without waiting; the builder uses the real ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class RateLimit:
    """At most one request per ``interval`` seconds (measured between request starts)."""

    interval: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _last: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.interval < 0:
            raise ValueError(f"rate-limit interval must be >= 0 s, got {self.interval}")

    def wait(self) -> None:
        """Block until the next request may start, and mark it as started."""
        now = self.clock()
        if self._last is not None and now - self._last < self.interval:
            self.sleep(self.interval - (now - self._last))
            now = self.clock()
        self._last = now


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed try ``attempt`` (from 0): ``min(cap, base * 2**attempt)``."""
    return min(cap, base * 2.0**attempt)


@dataclass(frozen=True)
class Backoff:
    """Retry policy: ``attempts`` tries in all, waiting ``backoff_delay`` between them."""

    attempts: int = 5
    base: float = 1.0
    cap: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"backoff attempts must be >= 1, got {self.attempts}")


def paced_call(
    fn: Callable[[], T],
    limit: RateLimit,
    policy: Backoff,
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` under ``limit``, retrying any exception with exponential backoff.

    Every attempt waits for the rate limit, so a retry never comes sooner than the limit allows.

    Raises:
        The last exception, once ``policy.attempts`` tries have failed.
    """
    for attempt in range(policy.attempts):
        limit.wait()
        try:
            return fn()
        except Exception as err:  # any failure of a remote API is worth a paced retry
            if attempt == policy.attempts - 1:
                raise
            delay = backoff_delay(attempt, policy.base, policy.cap)
            log.warning("%s failed (%s); retry %d in %.1f s", what, err, attempt + 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises
