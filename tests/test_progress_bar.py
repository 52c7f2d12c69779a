# SPDX-License-Identifier: MIT
"""Progress of index builds and feature extraction: a bar on a terminal, rare log lines off it."""

from __future__ import annotations

import io
import logging

import torch
from rich.console import Console
from rich.progress import Progress

from solo_diversity.console import counted, length, progress
from solo_diversity.evaluation.features import extract_features


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100), out


def test_a_terminal_gets_a_bar_that_counts_to_the_end(caplog):
    console, out = _terminal()
    with caplog.at_level(logging.INFO), progress("index x.h5", 3, console=console) as advance:
        assert list(counted(["a", "b", "c"], advance)) == ["a", "b", "c"]
    assert "index x.h5" in out.getvalue() and "3/3" in out.getvalue()
    assert not caplog.records  # the bar, not the log


def test_off_a_terminal_it_logs_at_most_every_few_seconds(caplog):
    console = Console(file=io.StringIO(), force_terminal=False)
    with caplog.at_level(logging.INFO, logger="solo_diversity.console"):
        with progress("index x.h5", 5, every_s=0.0, console=console) as advance:
            for _ in range(5):
                advance(1)
        with progress("slow", None, every_s=3600.0, console=console) as advance:
            for _ in range(1000):
                advance(1)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" (")[0] for line in lines] == [f"index x.h5: {k} of 5" for k in range(1, 6)]
    assert console.file.getvalue() == ""  # no bar drawn into a log


def test_a_live_display_already_running_keeps_it_working(caplog):
    console, out = _terminal()
    with Progress(console=console), caplog.at_level(logging.INFO):  # e.g. Lightning's bar
        with progress("features", 2, every_s=0.0, console=console) as advance:
            advance(2)
    # rich >= 14 nests the bar in the running display; older rich refuses, and it logs instead
    logged = [r.getMessage().split(" (")[0] for r in caplog.records]
    assert "features" in out.getvalue() or logged == ["features: 2 of 2"]


def test_length_of_a_stream_is_unknown():
    assert length([1, 2]) == 2 and length(iter([1, 2])) is None


def test_feature_extraction_through_the_progress_keeps_every_batch():
    batches = [(torch.ones(2, 3), torch.tensor([0, 1])), (torch.zeros(1, 3), torch.tensor([2]))]
    model = torch.nn.Linear(3, 4)
    feats, targets = extract_features(model, batches)
    assert targets.tolist() == [0, 1, 2]
    assert torch.equal(feats, model(torch.cat([b[0] for b in batches])).detach())
