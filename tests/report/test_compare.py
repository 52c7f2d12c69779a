# SPDX-License-Identifier: MIT
"""``solo-div report compare A B``: common cells with their deltas, the cells of one file only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from solo_diversity.cli import main


def _line(cell: str | None, seed: int, acc1: float, **more) -> dict:
    record = {
        "method": "simclr",
        "backbone": "resnet18",
        "C": 1000,
        "N": 100,
        "fraction": 0.1,
        "dataset": "cifar100",
        "label_fraction": 1.0,
        "probe_mode": "protocol",
        "seed": seed,
        "acc1": acc1,
        **more,
    }
    if cell is not None:
        record.update(table="t1", cell=cell)
    return record


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_common_cells_get_the_mean_over_seeds_and_the_delta(tmp_path, capsys):
    a = _write(
        tmp_path / "a.jsonl",
        [
            _line("simclr-f0.1", 0, 40.0),
            _line("simclr-f0.1", 1, 41.0),
            _line("simclr-f0.1", 1, 42.0),  # seed 1 re-probed: its newest line counts
            _line("simclr-f1.0", 0, 50.0, N=1000, fraction=1.0),
        ],
    )
    b = _write(
        tmp_path / "b.jsonl",
        [
            _line("simclr-f0.1", 0, 43.5),
            _line("byol-f0.1", 0, 30.0, method="byol"),
        ],
    )
    assert main(["report", "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "cells matched by table/cell id" in out
    assert re.search(
        r"in both \(1\):\n.*\n  t1/simclr-f0\.1 \| cifar100@1 protocol\s+"
        r"41\.00 \(n=2\)\s+43\.50 \(n=1\)\s+\+2\.50\n",
        out,
    )
    assert re.search(
        r"only in A \(1\):\n  t1/simclr-f1\.0 \| cifar100@1 protocol\s+50\.00 \(n=1\)", out
    )
    assert re.search(
        r"only in B \(1\):\n  t1/byol-f0\.1 \| cifar100@1 protocol\s+30\.00 \(n=1\)", out
    )


def test_old_lines_without_cell_ids_are_matched_by_their_run(tmp_path, capsys):
    a = _write(tmp_path / "a.jsonl", [_line(None, 0, 40.0)])  # an old line: no table, no cell
    b = _write(tmp_path / "b.jsonl", [_line("simclr-f0.1", 0, 39.0)])
    assert main(["report", "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "run attributes (method, backbone, pretrain_dataset, C, N, fraction)" in out
    assert re.search(
        r"method=simclr backbone=resnet18 C=1000 N=100 fraction=0\.1 \| cifar100@1 "
        r"protocol\s+40\.00 \(n=1\)\s+39\.00 \(n=1\)\s+-1\.00",
        out,
    )
    assert "only in A (0):" in out and "only in B (0):" in out


def _fail(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_a_missing_file_is_one_line(tmp_path, capsys):
    a = _write(tmp_path / "a.jsonl", [_line("c", 0, 1.0)])
    err = _fail(["report", "compare", str(a), str(tmp_path / "nope.jsonl")], capsys)
    assert re.fullmatch(r"error: results file .*nope\.jsonl does not exist\n", err)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"acc1,seed\n1,0\n", r"b\.jsonl:1: not a JSON line"),
        (b"\x89PNG\r\n\x1a\n\xff\xfe", r"b\.jsonl is not a text file of JSON lines"),
    ],
)
def test_a_file_that_is_not_jsonl_is_one_line(tmp_path, capsys, content, message):
    a = _write(tmp_path / "a.jsonl", [_line("c", 0, 1.0)])
    b = tmp_path / "b.jsonl"
    b.write_bytes(content)
    assert re.search(message, _fail(["report", "compare", str(a), str(b)], capsys))
    assert b.read_bytes() == content


def test_compare_needs_two_files(tmp_path, capsys):
    a = _write(tmp_path / "a.jsonl", [_line("c", 0, 1.0)])
    err = _fail(["report", "compare", str(a)], capsys)
    assert "report compare takes two results files, got 1" in err
