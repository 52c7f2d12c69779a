# SPDX-License-Identifier: MIT
"""``solo-div plan``: the table of a budget over fractions, and its bad arguments."""

from __future__ import annotations

import pytest

from solo_diversity.cli import main as cli_main


def _fails(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli_main(argv)
    assert stop.value.code == 2


def test_plan_prints_both_readings_of_the_warmup(capsys) -> None:
    assert cli_main(["plan", "--C", "50e6", "--dataset", "cifar100", "--fractions", "0.1"]) == 0
    assert "subset" in (out := capsys.readouterr().out) and "│          190 │" in out
    argv = ["plan", "--C", "50e6", "--dataset", "cifar100", "--fractions", "0.1"]
    assert cli_main([*argv, "--epoch-keys", "reference"]) == 0
    assert "│        1,953 │" in capsys.readouterr().out


def test_a_fraction_above_one_is_one_line(capsys) -> None:
    argv = ["plan", "--C", "50e6", "--dataset", "cifar100", "--fractions", "0.5", "2"]
    _fails(argv)
    line = "error: --fractions 2 must be in (0, 1]: a share of the dataset\n"
    assert capsys.readouterr().err == line


def test_a_warmup_past_the_run_is_refused_unless_allowed(capsys) -> None:
    argv = [
        "plan",
        "--C",
        "98e6",
        "--dataset",
        "yfcc100m",
        "--fractions",
        "1",
        "--batch-size",
        "4096",
    ]
    _fails(argv)
    assert "warmup_steps lands at or past the last of the run's 23,925 steps" in (
        capsys.readouterr().err
    )
    assert cli_main([*argv, "--allow-late-switches"]) == 0
    assert "lands at or past" in capsys.readouterr().out
