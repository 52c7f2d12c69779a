# SPDX-License-Identifier: MIT
"""Loader workers and DALI feed processes leave stop signals to the main process and die with it.

Ctrl-C at a terminal, ``kill -TERM -PGID``, ``timeout`` and SLURM signal every process of a run.
The main process alone decides what that means (save at the next step, stop, tear the children
down: :mod:`solo_diversity.run.interrupt`); a child killed by the signal would end the run with a
traceback instead. This sits in ``data/`` because the loaders start the children.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Iterator

#: The signals that stop a run wherever it runs: Ctrl-C and a scheduler's SIGTERM.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back from the calling thread while it starts child processes.

    A child inherits the signal mask (across ``exec`` too, so spawned ones as well): a stop
    signal sent to the whole process group during a child's start-up waits in it, and
    :func:`shield_child` then discards it, instead of killing the child before it could ignore
    it. The main process receives its own copy when the block ends.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when ``parent`` ends (Linux; elsewhere nothing).

    Without it a child whose parent was SIGKILLed lives on until it notices (DALI's feed
    processes for 60-90 s, keeping multiprocessing's resource tracker alive). The kernel ties
    this to the thread that started the child, which here is always the main thread.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)


def shield_child(parent: int) -> None:
    """In a loader worker or DALI feed process of ``parent``: ignore stop signals, die with it.

    The main process decides what a stop signal means (save at the next step, then stop) and
    shuts its children down; a child killed by the signal that reached the whole process group
    would end the run with a traceback instead. Does nothing in ``parent`` itself (an object
    unpickled there).
    """
    if os.getpid() == parent:
        return
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)  # also discards one held back by the start-up
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    die_with_parent(parent)
