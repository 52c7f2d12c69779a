# SPDX-License-Identifier: MIT
"""One run, one writer: a lock on a run's version folder, taken before anything is written there.

Two processes on one run folder (two auto-resumes that found the same checkpoint, a requeued job
whose predecessor still runs) would interleave checkpoints, ledgers and log rows. The first to
lock ``run.lock`` in the folder writes; any other stops with one line and exit code 2 before it
touches anything. The lock is the kernel's ``flock`` on that file, which ends with its holder
however the holder ends (SIGKILL included), so the lock of a killed run is taken over with no
clean-up; the file records the holder (host, pid, start) for the message. On a file system
without ``flock`` (some Lustre and FUSE mounts) the record alone decides: a holder on this host
whose process is gone is stale and is taken over; one on another host cannot be checked from
here, so the message names the file to delete once that run is known to be gone.

Only the process that writes the run takes the lock: rank 0 (the other ranks of a DDP run write
nothing of their own). A lock still held by this very process comes from an earlier
:func:`lock_run` call that ended without releasing it (an exception); a process trains one run at
a time, so it is taken over.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from solo_diversity.errors import UserError

try:
    import fcntl
except ImportError:  # not a POSIX system: the record alone decides
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "run.lock"

#: ``flock`` errors that mean "this file system has no such locks", not "someone holds it".
_NO_FLOCK = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}

#: Environment variables that give a process a non-zero rank (torchrun, SLURM, Lightning's DDP).
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK")


@dataclass(frozen=True)
class Holder:
    """Who holds a run folder: host name, process id, its kernel start tick, and since when."""

    host: str
    pid: int
    start: int | None
    since: str

    @staticmethod
    def me() -> Holder:
        """The record of the calling process."""
        pid = os.getpid()
        return Holder(socket.gethostname(), pid, process_start(pid), time.strftime("%F %T"))

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (since {self.since})"


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3 on of ``/proc/<pid>/stat`` (state first), None where there is no such file."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # after the name, which may hold spaces


def process_start(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (None where unknown or gone).

    Tells a live holder from an unrelated process that later got its pid.
    """
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None  # field 22


def alive_here(holder: Holder) -> bool:
    """Whether ``holder``, a process of this host, still runs (itself, not its pid's heir)."""
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    fields = _proc_stat(holder.pid)
    if fields is None:
        return True  # no /proc: the pid exists
    if fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped
    return holder.start is None or int(fields[19]) == holder.start


def held_elsewhere(kernel: bool | None, holder: Holder | None, host: str) -> bool:
    """Whether another process holds the run.

    Args:
        kernel: the ``flock`` answer: True (this process got it), False (another holds it) or
            None (no ``flock`` on this file system).
        holder: the record in the lock file (None when empty or unreadable).
        host: this host's name.

    Returns:
        The kernel's answer where there is one; else whether the record names a live process
        (one on another host counts as live: it cannot be checked from here).
    """
    if kernel is not None:
        return not kernel
    if holder is None:
        return False
    return holder.host != host or alive_here(holder)


def writes_run(env: Mapping[str, str]) -> bool:
    """Whether this process writes the run (rank 0), from the launchers' rank variables."""
    return all(int(env.get(name) or 0) == 0 for name in RANK_VARIABLES)


class RunLock:
    """A held lock on one run folder; :meth:`release` (or the process's end) frees it.

    Args:
        path: the lock file.
        fd: its open descriptor (holding the ``flock`` where there is one).
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd

    def release(self) -> None:
        """Free the folder: empty the record, drop the ``flock``, close the file."""
        if self.fd < 0:
            return
        _HELD.pop(self.path, None)
        try:
            os.ftruncate(self.fd, 0)
            if fcntl is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        except OSError:
            pass  # closing frees it as well
        os.close(self.fd)
        self.fd = -1


_HELD: dict[Path, RunLock] = {}


def _flock(fd: int) -> bool | None:
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as err:
        if err.errno in _NO_FLOCK:
            return None
        raise
    return True


def _read(fd: int) -> Holder | None:
    try:
        return Holder(**json.loads(os.pread(fd, 4096, 0).decode()))
    except (OSError, ValueError, TypeError):
        return None


def _busy(folder: Path, path: Path, holder: Holder | None, kernel: bool | None) -> str:
    who = holder.describe() if holder else "another process"
    line = f"run folder {folder} is in use by {who}: one run, one writer"
    if kernel is None and holder is not None and holder.host != socket.gethostname():
        return f"{line}; if that run has ended, delete {path} and run this again"
    return f"{line}; wait for it to end or stop it, then run this again"


def lock_run(folder: Path, resume: str | Path | None = None) -> RunLock:
    """Lock ``folder`` (created if missing) for this process, or stop with one line.

    Args:
        folder: the run's version folder.
        resume: the checkpoint this process resumes from: it must still exist once the lock is
            held (a holder that has just ended may have replaced it).

    Raises:
        UserError: another live process holds it, the checkpoint is gone, or the folder cannot be
            written.
    """
    folder = Path(folder)
    path = (folder / LOCK_NAME).absolute()
    if path in _HELD:
        _HELD.pop(path).release()  # an earlier call of this process that did not release it
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise UserError(f"cannot lock run folder {folder} ({err.strerror or err})") from err
    try:
        kernel = _flock(fd)
        holder = _read(fd)
        if held_elsewhere(kernel, holder, socket.gethostname()):
            raise UserError(_busy(folder, path, holder, kernel))
        record = json.dumps(asdict(Holder.me())).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
    except BaseException:
        os.close(fd)
        raise
    _HELD[path] = lock = RunLock(path, fd)
    if resume is not None and not Path(resume).is_file():
        lock.release()
        raise UserError(
            f"{resume} was replaced by another process of this run while this one started; "
            "run this again to resume from its newest checkpoint"
        )
    return lock
