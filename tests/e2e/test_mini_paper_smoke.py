# SPDX-License-Identifier: MIT
"""The mini paper's whole path in about two minutes (``--smoke``): the script builds the indexes
from Fashion-MNIST's IDX files, pretrains the smallest and the largest subset, writes and probes
the raw-pixel floor (the random-init floor takes the same path), and renders the table, the
aggregates and the figure.

The IDX files are a stand-in with Fashion-MNIST's shape (60,000 + 1,000 grey 28 px images in 10
classes), so that the cells' N are the layout's and every result finds its row.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import numpy as np

from tests.index.idx_files import write_idx

REPO = Path(__file__).resolve().parents[2]


def _fake_fashion_mnist(root: Path, n_train: int = 60_000, n_test: int = 1_000) -> Path:
    """Class templates (blocky, so the PNGs stay small) with a little noise, as IDX files."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    templates = rng.integers(0, 4, size=(10, 7, 7)).repeat(4, 1).repeat(4, 2) * 60
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        noise = (rng.random((n, 28, 28)) < 0.02) * 40
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", templates[labels] + noise)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as handle:
        return {r["row"]: r for r in csv.DictReader(handle) if r["column"] == "SimCLR"}


def test_the_smoke_runs_the_mini_papers_path_to_its_table_and_figure(tmp_path):
    idx = _fake_fashion_mnist(tmp_path / "idx")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = subprocess.run(
        [
            "bash",
            str(REPO / "scripts" / "mini_paper_fashion_mnist.sh"),
            "--smoke",
            "--fashion-mnist-root",
            str(idx),
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "mini paper: " in run.stdout and " s for 3 cells x 1 seeds" in run.stdout
    lines = [json.loads(t) for t in (out / "results.jsonl").read_text().splitlines()]
    by_cell = {r["cell"]: r for r in lines}
    assert sorted(by_cell) == ["simclr-n256", "simclr-n60000", "simclr-raw_pixels"]
    assert [by_cell[c]["N"] for c in ("simclr-n256", "simclr-n60000")] == [256, 60_000]
    assert {by_cell[c]["C"] for c in ("simclr-n256", "simclr-n60000")} == {2048}
    assert by_cell["simclr-raw_pixels"]["baseline"] == "raw_pixels"
    assert by_cell["simclr-raw_pixels"]["backbone"] == "raw_pixels"

    report = out / "report"
    rows = _rows(report / "mini_paper_fashion_mnist.csv")
    for row, cell in (
        ("256 1,000 0.001", "simclr-n256"),
        ("60,000 4.3 0.23", "simclr-n60000"),
        ("raw pixels - -", "simclr-raw_pixels"),
    ):
        assert rows[row]["n"] == "1" and float(rows[row]["mean"]) == by_cell[cell]["acc1"]
    for ext in ("pdf", "svg", "png"):
        assert (report / f"mini_paper_fashion_mnist_acc_vs_D.{ext}").stat().st_size > 1000
    svg = (report / "mini_paper_fashion_mnist_acc_vs_D.svg").read_text()
    assert "raw pixels" in svg  # the floor is in the legend
