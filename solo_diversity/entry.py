# SPDX-License-Identifier: MIT
"""What every entry point shares: user errors become one line and exit code 2, not a traceback,
and this project's warnings reach the console even when hydra's job logging is disabled.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence

from solo_diversity.errors import UserError

PACKAGE_LOGGER = "solo_diversity"
FORMAT = "%(levelname)s %(name)s: %(message)s"


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler :func:`route_warnings_to_console` attaches (recognised on a re-run)."""


def _shows_on_console(logger: logging.Logger, level: int) -> bool:
    """Whether a record of ``level`` from ``logger`` already reaches a console stream handler."""
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            stream = getattr(handler, "stream", None)
            console = stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
            if (
                isinstance(handler, logging.StreamHandler)
                and not isinstance(handler, logging.FileHandler)
                and console
                and handler.level <= level
            ):
                return True
        current = current.parent if current.propagate else None
    return False


def route_warnings_to_console() -> None:
    """Make ``solo_diversity.*`` warnings (and worse) reach stderr exactly once.

    solo-learn's YAML headers (kept by ours) set ``hydra/job_logging: disabled``: hydra then
    applies ``disable_existing_loggers: true`` with the root at ERROR, which disables every logger
    created at import time, ours included, so unreadable images or skipped keys would go unseen.
    Call this after hydra has configured logging (inside the task function). It re-enables this
    package's loggers at WARNING (its INFO lines stay as quiet as the config asked), and attaches
    a stderr handler only when no console handler (e.g. hydra's default job logging) shows them.
    """
    silenced = False
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if (name == PACKAGE_LOGGER or name.startswith(PACKAGE_LOGGER + ".")) and isinstance(
            logger, logging.Logger
        ):
            silenced = silenced or logger.disabled
            logger.disabled = False
    package = logging.getLogger(PACKAGE_LOGGER)
    package.disabled = False
    if silenced or package.getEffectiveLevel() > logging.WARNING:
        package.setLevel(logging.WARNING)  # silenced by hydra: warnings and errors only
    if any(isinstance(h, _ConsoleHandler) for h in package.handlers):
        return
    if not _shows_on_console(package, logging.WARNING):
        handler = _ConsoleHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter(FORMAT))
        package.addHandler(handler)


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Print ``error: <message>`` to stderr and exit 2 when a :class:`UserError` escapes.

    It also routes this project's warnings to the console (:func:`route_warnings_to_console`).
    """
    logging.basicConfig(level=logging.INFO, format=FORMAT)
    route_warnings_to_console()
    try:
        yield
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def standalone_main(
    register: Callable[[argparse._SubParsersAction], None], argv: Sequence[str] | None
) -> int:
    """Run one sub-command group without the whole ``solo-div`` parser (its imports are slow).

    ``register`` adds the group (``index``, ``build``) to a bare parser; a :class:`UserError` is
    one ``error:`` line on stderr and exit code 2, as under ``solo-div``.
    """
    parser = argparse.ArgumentParser(prog="solo-div")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def group_main(
    group: str, add: Callable[[argparse._SubParsersAction], None], argv: Sequence[str] | None
) -> int:
    """``python -m <module> <group> <command> ...`` for one command of a group (``build web``).

    torchrun and SLURM start a builder as a module; ``add`` adds its command under ``group``, and a
    :class:`UserError` is one ``error:`` line and exit code 2 (:func:`exit_on_user_error`).
    """
    parser = argparse.ArgumentParser(prog="solo-div")
    commands = parser.add_subparsers(dest="command", required=True).add_parser(group)
    add(commands.add_subparsers(dest=f"{group}_command", required=True))
    args = parser.parse_args(argv)
    with exit_on_user_error():
        return int(args.func(args))
    return 2  # not reached: exit_on_user_error exits 2 on a UserError

