# SPDX-License-Identifier: MIT
"""What a paper takes from ``solo-div report``: the CSV/JSON aggregates and PDF/SVG/PNG figures."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from solo_diversity.cli import main
from solo_diversity.experiments.results import read_results
from solo_diversity.report.aggregate import COLUMNS, aggregate_rows
from solo_diversity.report.assign import assign
from solo_diversity.report.cli import write_report
from solo_diversity.report.figures import MIN_SPAN, PANEL, y_range
from solo_diversity.report.match import pair_table
from tests.report.result_lines import CONFIGS, line, write_lines

SEEDS = (38.0, 38.4, 39.1)
TABLE = "table1_cifar100"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, Path]:
    """Table 1(a) with SimCLR at 10% over three seeds, 50% over one, written once at 40 dpi."""
    folder = tmp_path_factory.mktemp("publication")
    records = [line("simclr", 5000, acc, seed=s) for s, acc in enumerate(SEEDS)]
    results = write_lines(folder / "linear.jsonl", [*records, line("simclr", 25000, 50.0)])
    write_report(results, folder / "out", tables=[TABLE], configs=CONFIGS, dpi=40)
    return results, folder / "out"


def _csv_rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / f"{TABLE}.csv").open(newline="") as handle:
        return {f"{r['row']}|{r['column']}": r for r in csv.DictReader(handle)}


def test_csv_std_is_numpys_sample_std(report):
    rows = _csv_rows(report[1])
    three = rows["5 0.1|SimCLR"]
    assert float(three["std"]) == pytest.approx(np.std(SEEDS, ddof=1), rel=1e-12)
    assert float(three["mean"]) == pytest.approx(np.mean(SEEDS), rel=1e-12)
    assert (three["n"], three["seeds"], three["paper"]) == ("3", "0;1;2", "37.95")
    assert float(three["diff"]) == pytest.approx(np.mean(SEEDS) - 37.95, rel=1e-12)
    one = rows["25 0.5|SimCLR"]
    assert (one["n"], one["mean"], one["std"], one["min"]) == ("1", "50.0", "", "50.0")
    none = rows["5 0.1|BYOL"]
    assert (none["n"], none["mean"], none["std"], none["paper"]) == ("0", "", "", "41.14")
    assert len(rows) == 21


def test_json_round_trips_the_aggregate(report):
    results, out = report
    pairing = pair_table(TABLE, CONFIGS)
    expected = aggregate_rows(pairing, assign(read_results(results), list(pairing.slots)))
    document = json.loads((out / f"{TABLE}.json").read_text())
    assert document["rows"] == expected and document["columns"] == list(COLUMNS)
    assert document["title"] == "Table 1(a): data diversity on CIFAR-100, C = 50x10^6"
    with (out / f"{TABLE}.csv").open(newline="") as handle:
        for row, record in zip(csv.DictReader(handle), expected, strict=True):
            assert row == {k: "" if v is None else str(v) for k, v in record.items()}


def test_tables_show_mean_std_and_n(report):
    md = (report[1] / f"{TABLE}.md").read_text()
    assert "| 5 | 0.1 | 38.50 ± 0.56 [3] / 37.95 (+0.55) |" in md
    assert "| 25 | 0.5 | 50.00 [1] / 50.13 (-0.13) |" in md
    tex = (report[1] / f"{TABLE}.tex").read_text()
    assert r"5 & 0.1 & 38.50 $\pm$ 0.56 [3] / 37.95 (+0.55) & - / 44.30" in tex


def test_figure_is_pdf_svg_and_png_at_the_dpi(report):
    stem = report[1] / f"{TABLE}_acc_vs_D"
    pdf = stem.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    root = ET.parse(stem.with_suffix(".svg")).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    size = Image.open(stem.with_suffix(".png")).size
    assert size == (round(PANEL[0] * 40), round(PANEL[1] * 40))


def test_y_range_never_zooms_a_small_difference():
    assert y_range([57.0, 57.5]) == (50.0, 65.0)
    low, high = y_range([38.2, 37.95, 50.13, 58.59])
    assert (low, high) == (35.0, 65.0) and high - low >= MIN_SPAN
    assert y_range([10.0, 90.0]) == (0.0, 100.0)
    assert y_range([57.0, 57.5], fixed=(0.0, 100.0)) == (0.0, 100.0)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ylim", "70", "30"], "--ylim 70 30: LOW must be below HIGH, e.g. --ylim 30 70"),
        (["--dpi", "0"], "--dpi 0: give a resolution from 10 to 1200, e.g. --dpi 300"),
    ],
)
def test_bad_figure_flags_are_one_line(report, tmp_path, capsys, flags, message):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(report[0]), "--out", str(out), *flags])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {message}"
    assert not out.exists()
