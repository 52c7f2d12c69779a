# SPDX-License-Identifier: MIT
"""Table 3: its distance cell list, its script's dry run, and the report beside the paper's."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from solo_diversity.cli import main
from solo_diversity.experiments.cells import load_experiment
from solo_diversity.report.distances import pair_distances

REPO = Path(__file__).resolve().parents[2]


def test_table3_list_is_the_papers_36_distances():
    exp = load_experiment("table3_distances")
    assert exp.kind == "distance" and len(exp.distances) == 36 and exp.cells == ()
    pairing = pair_distances()
    assert pairing.unpaired == [] and len(set(map(id, pairing.cells.values()))) == 36
    spec = exp.distance("fid_inception-yfcc100m-places365")
    assert (spec.kind, spec.extractor, spec.max_samples) == ("fid", "inception", 50_000)


def test_table3_script_dry_run_lists_each_distance_command(tmp_path):
    env = {**os.environ, "SOLO_DIV_DISTANCES": str(tmp_path / "d"), "INDEX_DIR": "idx"}
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "table3_distances.sh"), "--dry-run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    commands = [x for x in out.stdout.splitlines() if " distance " in x]
    assert len(commands) == 36
    assert any(
        "distance vdna idx/imagenet_train.h5 idx/food101_train.h5 --extractor dinov2_vit_base" in c
        for c in commands
    )
    assert all(f"--json {tmp_path}/d/" in c and "--max-samples 50000" in c for c in commands)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "fid_inception-imagenet-food101.json").write_text(json.dumps({"fid": 1.0}))
    again = subprocess.run(
        ["bash", str(REPO / "scripts" / "table3_distances.sh"), "--dry-run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "36 distance(s), 1 done; to run: 35" in again.stdout


def test_table3_run_names_missing_indexes_in_one_line(tmp_path, capsys, monkeypatch):
    argv = [
        "experiment",
        "run",
        "table3_distances",
        "--only",
        "fid_inception-imagenet-food101",
        "--distances",
        str(tmp_path / "d"),
        "--workdir",
        str(tmp_path),
    ]
    monkeypatch.setenv("INDEX_DIR", "idx")
    assert main(argv) == 1
    assert "fid_inception-imagenet-food101: skipped, it needs" in capsys.readouterr().err


def test_report_prints_table3_beside_the_papers_numbers(tmp_path, capsys):
    results = tmp_path / "linear.jsonl"
    results.write_text("")
    folder = tmp_path / "distances"
    folder.mkdir()
    (folder / "vdna_mugs-imagenet-stanford_cars.json").write_text(json.dumps({"emd": 11.0}))
    (folder / "fid_inception-yfcc100m-places365.json").write_text(json.dumps({"fid": 40.0}))
    argv = [
        "report",
        str(results),
        "--out",
        str(tmp_path / "out"),
        "--distances",
        str(folder),
        "--no-figures",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    md = (tmp_path / "out" / "table3_distances.md").read_text()
    for text in (printed, md):
        assert "11.00 / 11.49 (-0.49)" in text  # ours / paper (ours - paper)
        assert "40.00 / 38.86 (+1.14)" in text
        assert "- / 0.00" in text and "2 of 36 distances computed" in text
    assert "| table3_distances | 2 | 34 |" in (tmp_path / "out" / "report.md").read_text()
    assert "11.00 / 11.49" in (tmp_path / "out" / "table3_distances.tex").read_text()
    rows = json.loads((tmp_path / "out" / "table3_distances.json").read_text())["rows"]
    cars = next(r for r in rows if r["cell"] == "vdna_mugs-imagenet-stanford_cars")
    assert (cars["n"], cars["mean"], cars["std"], cars["paper"]) == (1, 11.0, None, 11.49)
    assert cars["diff"] == pytest.approx(-0.49)
    assert sum(r["n"] for r in rows) == 2 and len(rows) == 36
    csv_lines = (tmp_path / "out" / "table3_distances.csv").read_text().splitlines()
    assert csv_lines[0].startswith("table,block,row,column,cell,") and len(csv_lines) == 37
