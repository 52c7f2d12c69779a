# SPDX-License-Identifier: MIT
"""A forked test child behaves as the fresh interpreter it stands for (``tests/zygote.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests import zygote

SCRIPT = """
import os, random, sys
print(sys.argv[1:], os.getcwd(), os.environ.get("PROBE_VALUE"), os.getpid(), os.getsid(0))
print(random.random())
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


def _script(tmp_path):
    path = tmp_path / "child.py"
    path.write_text(SCRIPT)
    return [sys.executable, str(path)]


def test_a_child_gets_its_argv_place_environment_streams_and_exit_code(tmp_path):
    env = {**os.environ, "PROBE_VALUE": "seen"}
    done = zygote.run([*_script(tmp_path), "3"], cwd=tmp_path, env=env, capture_output=True)
    first, number = done.stdout.splitlines()
    assert done.returncode == 3 and done.stderr == "to stderr\n"
    argv, cwd, value, pid, _ = first.rsplit(" ", 4)
    assert (argv, cwd, value) == ("['3']", str(tmp_path), "seen") and int(pid) != os.getpid()
    again = zygote.run([*_script(tmp_path), "0"], cwd=tmp_path, env=env, capture_output=True)
    assert again.returncode == 0 and again.stdout.splitlines()[1] != number  # reseeded


def test_a_child_in_its_own_session_dies_of_sigkill(tmp_path):
    script = tmp_path / "wait.py"
    script.write_text("import os, time\nprint(os.getsid(0), flush=True)\ntime.sleep(60)\n")
    child = zygote.popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, start_new_session=True
    )
    assert isinstance(child, zygote.Child)
    assert int(child.stdout.readline()) == child.pid  # the leader of a new session
    os.killpg(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL


def test_ddp_shell_and_fresh_commands_start_a_fresh_interpreter():
    python = sys.executable
    assert zygote.forkable([python, "-m", "tests.e2e.resume_runs", "devices=2"]) is None
    assert zygote.forkable(["bash", "-c", "true"]) is None
    assert zygote.forkable([python, "main_pretrain.py"], {zygote.FRESH_ENV: "1"}) is None
    assert zygote.forkable([python, "-m", "a.b", "x=1"], {}) == ("module", "a.b", ["x=1"])
