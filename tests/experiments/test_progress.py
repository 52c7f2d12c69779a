# SPDX-License-Identifier: MIT
"""What a person following a sweep reads: the ``[k/n]`` line with its ETA, and status's notes."""

from __future__ import annotations

import pytest

from solo_diversity.cli import main
from solo_diversity.experiments.progress import clock, eta_seconds, progress_line


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0:00"),
        (59.4, "0:59"),
        (61, "1:01"),
        (3599, "59:59"),
        (3725, "1:02:05"),
        (90061, "25:01:01"),
        (-3, "0:00"),
    ],
)
def test_clock(seconds, text):
    assert clock(seconds) == text


def test_eta_is_the_mean_task_time_times_the_tasks_left():
    assert eta_seconds(0.0, 0, 8) is None
    assert eta_seconds(250.0, 2, 8) == pytest.approx(750.0)
    assert eta_seconds(100.0, 8, 8) == 0.0


def test_progress_line():
    assert progress_line(1, 8, 0.4, "t1/simclr-f0.1/seed0") == (
        "[1/8] t1/simclr-f0.1/seed0 (elapsed 0:00, ETA unknown)"
    )
    assert progress_line(3, 8, 250.0, "t1/simclr-f0.5/seed0") == (
        "[3/8] t1/simclr-f0.5/seed0 (elapsed 4:10, ETA 12:30)"
    )


def test_status_without_results_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOLO_DIV_RESULTS", raising=False)
    monkeypatch.setenv("SOLO_DIV_RUNS", str(tmp_path / "my_runs"))
    assert main(["experiment", "status", "table1_cifar100", "--format", "tsv"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"note: no results file at {tmp_path / 'results' / 'linear.jsonl'}, so no probe is done "
        "(give --results or set SOLO_DIV_RESULTS)",
        f"note: no runs folder at {tmp_path / 'my_runs'}, so no pretraining has started (give "
        "--runs or set SOLO_DIV_RUNS)",
    ]
    assert len(captured.out.splitlines()) == 21  # the tsv stays clean: one row per cell x probe


def test_status_with_its_files_says_nothing_more(tmp_path, monkeypatch, capsys):
    (tmp_path / "runs").mkdir()
    results = tmp_path / "r.jsonl"
    results.write_text("")
    monkeypatch.delenv("SOLO_DIV_RUNS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "experiment",
                "status",
                "table1_cifar100",
                "--results",
                str(results),
                "--format",
                "tsv",
            ]
        )
        == 0
    )
    assert capsys.readouterr().err == ""
