# SPDX-License-Identifier: MIT
"""User-facing errors: one exception type whose message is a single line for the person at the CLI.

Everything a user can get wrong (a fraction, a budget, a path, a config key) raises
:class:`UserError`.
Entry points catch it and print ``error: <message>`` without a traceback; anything else is a bug and
keeps its traceback.
"""


class UserError(ValueError):
    """A bad input from the user; the message names the value and what is allowed."""
