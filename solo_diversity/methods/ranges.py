# SPDX-License-Identifier: MIT
"""What a numeric config key accepts (:class:`Number`), and the rules methods declare with it.

Each method class lists the ranges of the keys it reads in ``CONFIG_RANGES``, next to the
defaults it fills, so a new key gets its range where it is read. The rule lives here, below both
``methods/`` and ``config/``: :mod:`solo_diversity.config.keys` gathers the classes' ranges and
checks a whole config against them before anything runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def _bound(value: float | None) -> str:
    return "" if value is None else str(int(value)) if value == int(value) else f"{value:g}"


@dataclass(frozen=True)
class Number:
    """What a numeric config key accepts.

    Attributes:
        kind: ``"int"`` (an integer, not a bool) or ``"float"`` (an int or a finite float).
        low: smallest accepted value (None: unbounded).
        high: largest accepted value (None: unbounded).
        open_low: ``low`` itself is refused.
        nullable: ``null`` is accepted (the key is optional).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    nullable: bool = False

    def describe(self) -> str:
        """E.g. ``an integer >= 1``, ``a number in [0, 1]``, ``a number > 0 or null``."""
        noun = "an integer" if self.kind == "int" else "a number"
        low, high = _bound(self.low), _bound(self.high)
        if self.low is not None and self.high is not None:
            bound = f" in {'(' if self.open_low else '['}{low}, {high}]"
        elif self.low is not None:
            bound = f" {'>' if self.open_low else '>='} {low}"
        elif self.high is not None:
            bound = f" <= {high}"
        else:
            bound = ""
        return f"{noun}{bound}{' or null' if self.nullable else ''}"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has the right type and lies in range."""
        if value is None:
            return self.nullable
        if isinstance(value, bool):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or value <= self.high


POSITIVE_INT = Number("int", 1)
NON_NEGATIVE = Number("float", 0)
SHARE = Number("float", 0, 1)
POSITIVE = Number("float", 0, open_low=True)

# The projector sizes that every method with a projector reads.
PROJECTOR_RANGES: dict[str, Number] = {
    "method_kwargs.proj_hidden_dim": POSITIVE_INT,
    "method_kwargs.proj_output_dim": POSITIVE_INT,
}
