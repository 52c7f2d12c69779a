# SPDX-License-Identifier: MIT
"""What every entry point shares: user errors become one line and exit code 2, not a traceback,
and this project's warnings reach the console even when hydra's job logging is disabled, while
the library warnings known to be harmless are hidden (:data:`HARMLESS` names each, with why: a
sweep's log repeats them for every task and buries the warnings that matter; each filter matches
one message from its start and one category, so any other warning of the same library shows).

Faults of the machine rather than of the code get the same line: a standard stream that is closed
or cannot be written (``>&-``, ``> /dev/full``), and a path the run cannot create (a read-only
working directory, a file where a folder should be, a name too long for the file system).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from solo_diversity.errors import UserError

PACKAGE_LOGGER = "solo_diversity"
FORMAT = "%(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class HarmlessWarning:
    """One warning to hide: its message (a regular expression matched at its start) and why."""

    name: str
    category: type[Warning]
    message: str
    why: str


HARMLESS = (
    HarmlessWarning(
        "pytree_leafspec",
        FutureWarning,
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        "Lightning's own _pytree helper builds a LeafSpec, which torch deprecates; nothing of "
        "ours does, and Lightning will change it.",
    ),
    HarmlessWarning(
        "empty_list_dataloader",
        UserWarning,
        r"Total length of `list` across ranks is zero\. Please make sure this was your intention",
        "a run without validation passes an empty list of val loaders on purpose (the form that "
        "says one rank alone has no data is another message and still shows).",
    ),
    HarmlessWarning(
        "modules_in_eval_mode",
        UserWarning,  # Lightning's PossibleUserWarning is a UserWarning
        r"Found \d+ module\(s\) in eval mode at the start of training",
        "the probe keeps its frozen backbone in eval mode by design (solo-learn's protocol).",
    ),
)


def hide_harmless_warnings() -> None:
    """Install one ``ignore`` filter per entry of :data:`HARMLESS` (idempotent)."""
    for known in HARMLESS:
        warnings.filterwarnings("ignore", message=known.message, category=known.category)


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler :func:`route_warnings_to_console` attaches (recognised on a re-run).

    It writes to ``sys.stderr`` as it is when a record comes, not as it was when attached: an
    entry point called again in one process (a test's capture) would otherwise write to a closed
    stream.
    """

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


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


STREAMS = {"stdout": "standard output (fd 1)", "stderr": "standard error (fd 2)"}


def stream_fault(name: str) -> str | None:
    """Why ``sys.<name>`` cannot take a line (``"is closed"``, ``"cannot be written (...)"``).

    A zero-byte write reaches the device without writing anything, so ``/dev/full`` answers it
    with ENOSPC; a stream without a file descriptor (a test's capture) is taken as writable.
    """
    stream = getattr(sys, name)
    if stream is None:
        return "is closed"
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    try:
        os.write(fd, b"")
    except OSError as err:
        return "is closed" if err.errno == errno.EBADF else f"cannot be written ({err.strerror})"
    return None


def check_standard_streams() -> None:
    """Exit 2 with one line when stdout or stderr cannot be written, before anything runs.

    A run whose output goes nowhere would otherwise fail at its first print (a traceback from
    deep inside rich or Lightning, or none at all). The line goes to whichever stream works; when
    neither does, the exit code alone says it.
    """
    faults = {name: why for name in STREAMS if (why := stream_fault(name))}
    if not faults:
        return
    said = "; ".join(f"{STREAMS[name]} {why}" for name, why in faults.items())
    line = f"error: {said}; run with both streams writable, e.g. > run.log 2>&1"
    for name in (n for n in ("stderr", "stdout") if n not in faults):
        with contextlib.suppress(OSError):
            print(line, file=getattr(sys, name), flush=True)
    sys.exit(2)


# What a path the run cannot create fails with; other OSErrors stay tracebacks (they are bugs).
PATH_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.ENOTDIR}
NAME_MAX = 255  # bytes in one file name on Linux and macOS file systems


def _file_in_the_way(path: Path) -> Path | None:
    """The deepest existing part of ``path`` when it is a file (so nothing can go under it)."""
    for part in (path, *path.parents):
        try:
            if part.exists():
                return part if not part.is_dir() else None
        except OSError:  # a part that cannot even be looked up: no file to name
            return None
    return None


def path_error_line(err: OSError) -> str | None:
    """One line for an OSError of a path the run cannot create, or None for any other OSError.

    A relative path is named with the working directory it lives in, since that is what the user
    did not choose (``trained_models``, the default ``datasets/`` folder).
    """
    if err.errno not in PATH_ERRNOS or not err.filename:
        return None
    path = Path(os.fsdecode(err.filename))
    where = "" if path.is_absolute() else f" in the working directory {Path.cwd()}"
    if err.errno == errno.ENOTDIR and (blocker := _file_in_the_way(path)) is not None:
        return (
            f"{blocker}{where} is a file, so {path} cannot be created; move it or give a path "
            "outside it"
        )
    if err.errno == errno.ENAMETOOLONG:
        name = max(path.parts, key=lambda part: len(os.fsencode(part)))
        too_long = name if len(os.fsencode(name)) > NAME_MAX else str(path)
        return (
            f"{too_long[:40]}... ({len(os.fsencode(too_long))} bytes) is too long a name for the "
            "file system; give a shorter path"
        )
    return (
        f"cannot create {path}{where} ({err.strerror}); run from a writable folder or give a "
        "writable path"
    )


def error_line(err: Exception) -> str | None:
    """The one line an escaping exception becomes, or None for a bug (it keeps its traceback)."""
    if isinstance(err, UserError):
        return str(err)
    return path_error_line(err) if isinstance(err, OSError) else None


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Print ``error: <message>`` to stderr and exit 2 when a :class:`UserError` escapes.

    It first checks that stdout and stderr can be written (:func:`check_standard_streams`), turns
    an OSError of a path that cannot be created into the same one line (:func:`path_error_line`),
    routes this project's warnings to the console (:func:`route_warnings_to_console`) and hides
    the named harmless library warnings (:data:`HARMLESS`).
    """
    check_standard_streams()
    hide_harmless_warnings()
    logging.basicConfig(level=logging.INFO, format=FORMAT)
    route_warnings_to_console()
    try:
        yield
    except (UserError, OSError) as err:
        line = error_line(err)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)


def standalone_main(
    register: Callable[[argparse._SubParsersAction], None], argv: Sequence[str] | None
) -> int:
    """Run one sub-command group without the whole ``solo-div`` parser (its imports are slow).

    ``register`` adds the group (``index``, ``build``) to a bare parser; a :class:`UserError` is
    one ``error:`` line on stderr and exit code 2, as under ``solo-div``; so is a path that cannot
    be created (:func:`path_error_line`).
    """
    parser = argparse.ArgumentParser(prog="solo-div")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (UserError, OSError) as err:
        line = error_line(err)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
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
