# SPDX-License-Identifier: MIT
"""Test children forked from one Python that has already imported torch, Lightning and the package.

A test that runs a child process (``python -m tests.e2e.resume_runs ...``, ``python
main_pretrain.py ...``) to kill, signal or resume it spent about 6 s of its 8 in the child's
imports. Here each pytest worker starts one *zygote* that imports those modules once and then
forks a child per request: the child is still a process of its own (its pid, its process group
with ``start_new_session``, its own death under SIGKILL, its files), with the argv, environment,
working directory and standard streams the test gave it, and its random generators reseeded.

:func:`popen` returns a :class:`Child` with ``subprocess.Popen``'s methods that the tests use;
:func:`run` is ``subprocess.run`` for a Python command. A command that is not ``python -m module``
or ``python script.py``, or that starts more processes of itself (DDP's ranks), takes the usual
subprocess path; so does every command when ``SOLO_DIV_TEST_FRESH=1`` is set.
Only the standard library is imported here, so that the server process starts quickly.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FRESH_ENV = "SOLO_DIV_TEST_FRESH"
# What every child imports first: the package's entry points and the libraries under them.
PRELOAD = (
    "torch",
    "lightning.pytorch",
    "hydra",
    "solo_diversity.run.pretrain",
    "solo_diversity.evaluation.linear",
    "solo_diversity.entry",
    "tests.e2e.resume_runs",
)
ANSWER_BYTES = 4096


# --- the server (``python -m tests.zygote SOCKET``) -------------------------------------------


def _child_main(request: dict[str, Any], fds: list[int]) -> int:
    """In the forked child: take the request's streams, place and argv, then run its command."""
    import random
    import runpy

    if request["new_session"]:
        os.setsid()
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if os.environ.get("PYTHONUNBUFFERED"):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    random.seed()  # a fresh interpreter's generators differ between runs; forked ones would not
    _reseed_numpy_and_torch()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    kind, target, args = request["kind"], request["target"], request["args"]
    sys.argv = [target, *args]
    first = os.getcwd() if kind == "module" else str(Path(target).resolve().parent)
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = [first, *extra, *sys.path[1:]]  # as a fresh interpreter would set it
    try:
        if kind == "module":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target, run_name="__main__")
    except SystemExit as stop:
        return _exit_code(stop.code)
    except BaseException:  # noqa: BLE001 - what a fresh interpreter does with an uncaught error
        import traceback

        traceback.print_exc()
        return 1
    return 0


def _reseed_numpy_and_torch() -> None:
    import numpy as np
    import torch

    np.random.seed()
    torch.seed()


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _fork(request: dict[str, Any], fds: list[int], sockets: list[socket.socket]) -> int:
    """Fork a child for ``request``; the child closes the server's sockets (``sockets``)."""
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        return pid
    for held in sockets:  # else a connection stays open while any later child lives
        held.close()
    code = 1
    try:
        code = _child_main(request, fds)
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(path: str) -> None:
    """Import :data:`PRELOAD`, then fork a child per connection and report its exit status."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in pytest is for pytest
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    print("READY", flush=True)
    waiting: dict[int, socket.socket] = {}
    while True:
        ready, _, _ = select.select([server], [], [], 0.05)
        if ready:
            conn, _ = server.accept()
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            pid = _fork(json.loads(message), list(fds), [server, conn, *waiting.values()])
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            waiting[pid] = conn
        _report_exits(waiting)


def _report_exits(waiting: dict[int, socket.socket]) -> None:
    while waiting:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = waiting.pop(pid, None)
        if conn is not None:
            conn.sendall(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode())
            conn.close()


# --- the client ---------------------------------------------------------------------------------


class _Server:
    """This pytest worker's zygote: started on first use, stopped when the worker exits."""

    process: subprocess.Popen[str] | None = None
    path: str = ""

    @classmethod
    def address(cls) -> str:
        if cls.process is None or cls.process.poll() is not None:
            cls.path = str(Path(tempfile.mkdtemp(prefix="zygote-")) / "socket")
            cls.process = subprocess.Popen(
                [sys.executable, "-m", "tests.zygote", cls.path],
                cwd=REPO,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert cls.process.stdout is not None
            line = cls.process.stdout.readline()
            assert line.strip() == "READY", f"the test zygote did not start: {line!r}"
            atexit.register(cls.process.kill)
        return cls.path


class Child:
    """A forked child, with the ``subprocess.Popen`` methods the tests use.

    The zygote is the child's parent, so the exit status arrives over the request's connection.
    """

    def __init__(self, conn: socket.socket, pid: int, stdout: Any, stderr: Any) -> None:
        self.pid, self.stdout, self.stderr = pid, stdout, stderr
        self.returncode: int | None = None
        self._conn = conn

    def poll(self) -> int | None:
        if self.returncode is None:
            ready, _, _ = select.select([self._conn], [], [], 0)
            if ready:
                self._read_status()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            ready, _, _ = select.select([self._conn], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            self._read_status()
        assert self.returncode is not None
        return self.returncode

    def _read_status(self) -> None:
        data = b""
        while chunk := self._conn.recv(ANSWER_BYTES):
            data += chunk
        self.returncode = int(json.loads(data)["status"])
        self._conn.close()

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        out, err = _read_both(self)
        self.wait(timeout)
        return out, err


def forkable(
    cmd: list[str], env: dict[str, str] | None = None
) -> tuple[str, str, list[str]] | None:
    """``(kind, target, args)`` of a Python command the zygote can run, else None.

    ``SOLO_DIV_TEST_FRESH=1`` in the child's environment (``env``, else this process's) asks for
    a fresh interpreter: a test that reads the child's ``/proc`` entries needs its own command
    line and environment there (a forked child shows the zygote's).
    """
    wanted = os.environ if env is None else env
    if wanted.get(FRESH_ENV) == "1" or len(cmd) < 2 or cmd[0] != sys.executable:
        return None
    if any(arg.startswith("devices=") and arg not in ("devices=1", "devices=[0]") for arg in cmd):
        return None  # DDP starts its other ranks as fresh interpreters of this command
    if cmd[1] == "-m" and len(cmd) > 2:
        return "module", cmd[2], cmd[3:]
    if cmd[1].endswith(".py"):
        return "script", cmd[1], cmd[2:]
    return None


def _stream(spec: Any) -> tuple[int, Any]:
    """The fd a child writes to for ``spec`` (PIPE, DEVNULL, a file, None) and the reader kept."""
    if spec is subprocess.PIPE:
        read, write = os.pipe()
        return write, os.fdopen(read, "r")
    if spec is None:
        return os.dup(sys.__stdout__.fileno()), None  # type: ignore[union-attr]
    if spec is subprocess.DEVNULL:
        return os.open(os.devnull, os.O_WRONLY), None
    return os.dup(spec.fileno()), None


def popen(
    cmd: list[str],
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    stdout: Any = None,
    stderr: Any = None,
    start_new_session: bool = False,
    text: bool = True,
) -> Child | subprocess.Popen[str]:
    """``subprocess.Popen`` for a Python command, forked from the zygote when it can be."""
    parsed = forkable(cmd, env)
    if parsed is None:
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=start_new_session,
            text=text,
        )
    kind, target, args = parsed
    out_fd, out_reader = _stream(stdout)
    if stderr is subprocess.STDOUT:
        err_fd, err_reader = os.dup(out_fd), None
    else:
        err_fd, err_reader = _stream(stderr)
    in_fd = os.open(os.devnull, os.O_RDONLY)
    request = {
        "kind": kind,
        "target": target,
        "args": args,
        "cwd": str(cwd or os.getcwd()),
        "env": dict(os.environ if env is None else env),
        "new_session": start_new_session,
    }
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(_Server.address())
    socket.send_fds(conn, [json.dumps(request).encode()], [in_fd, out_fd, err_fd])
    for fd in (in_fd, out_fd, err_fd):
        os.close(fd)
    answer = b""
    while not answer.endswith(b"\n"):
        answer += conn.recv(ANSWER_BYTES)
    return Child(conn, int(json.loads(answer)["pid"]), out_reader, err_reader)


def run(
    cmd: list[str], *, timeout: float | None = None, check: bool = False, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(cmd, capture_output=True, text=True, ...)`` through :func:`popen`."""
    kwargs.pop("text", None)
    if kwargs.pop("capture_output", False):
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child = popen(cmd, **kwargs)
    out, err = _read_both(child)
    code = child.wait(timeout)
    done = subprocess.CompletedProcess(cmd, code, out, err)
    if check:
        done.check_returncode()
    return done


def _read_both(child: Any) -> tuple[str | None, str | None]:
    """Both pipes to their end, read together so that neither fills and blocks the child."""
    streams = {s: [] for s in (child.stdout, child.stderr) if s is not None}
    open_streams = list(streams)
    while open_streams:
        ready, _, _ = select.select(open_streams, [], [])
        for stream in ready:
            chunk = os.read(stream.fileno(), 65536)
            if chunk:
                streams[stream].append(chunk)
            else:
                open_streams.remove(stream)
    text = {s: b"".join(parts).decode() for s, parts in streams.items()}
    return text.get(child.stdout), text.get(child.stderr)


if __name__ == "__main__":
    serve(sys.argv[1])
