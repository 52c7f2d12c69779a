# SPDX-License-Identifier: MIT
"""What every entry point shares: user errors become one line and exit code 2, not a traceback."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

from solo_diversity.errors import UserError


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Print ``error: <message>`` to stderr and exit 2 when a :class:`UserError` escapes."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        yield
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
