"""``solo-div report``: a results file made here -> Markdown, LaTeX and PNG beside the paper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from solo_diversity.cli import main
from solo_diversity.errors import UserError
from solo_diversity.experiments.cells import load_experiment
from solo_diversity.experiments.plan import resolve_cell
from solo_diversity.experiments.results import read_results
from solo_diversity.report.cli import write_report
from tests.report.result_lines import CONFIGS, line, write_lines


@pytest.fixture
def cifar_results(tmp_path):
    return write_lines(
        tmp_path / "linear.jsonl",
        [
            line("simclr", 5000, 38.0, seed=0),
            line("simclr", 5000, 38.4, seed=1),
            line("simclr", 25000, 50.0),
            line("byol", 50000, 57.5, mode="features"),
            line("simclr", 777, 10.0),  # matches no cell
            {**line("simclr", 5000, 30.0), "k": 20, "distance_function": "cosine"},  # kNN
        ],
    )


def test_markdown_has_ours_beside_the_paper(cifar_results, tmp_path):
    out = tmp_path / "report"
    written = write_report(cifar_results, out, configs=CONFIGS)
    assert sorted(written) == ["report", "table1_cifar100"]
    md = (out / "table1_cifar100.md").read_text()
    assert (
        "| 5 | 0.1 | 38.20 ± 0.28 [2] / 37.95 (+0.25) | - / 44.30 | - / 41.14 | - / 14.06 | "
        "- / 44.06 | - / 12.51 | - / 15.74 |"
    ) in md
    assert "| 25 | 0.5 | 50.00 [1] / 50.13 (-0.13) | - / 54.29 |" in md
    assert "| 50 | 1.0 | - / 58.59 | - / 58.42 | 57.50† [1] / 58.28 (-0.78) |" in md
    assert (
        "- table1_cifar100/simclr-f0.1: seed 0: 38.00, seed 1: 38.40; mean 38.20 ± 0.28, "
        "n=2 (min 38.00, max 38.40); probe protocol"
    ) in md
    assert (
        "- table1_cifar100/byol-f1.0: seed 0: 57.50; mean 57.50, n=1 (min 57.50, max 57.50); "
        "probe features" in md
    )
    missing = next(x for x in md.splitlines() if x.startswith("Missing ("))
    assert missing.startswith(
        "Missing (18): table1_cifar100/barlow_twins-f0.1, table1_cifar100/byol"
    )
    assert "table1_cifar100/simclr-f0.1," not in missing
    summary = (out / "report.md").read_text()
    assert "| table1_cifar100 | 3 | 18 |" in summary
    assert "| table2_imagenet_yfcc | 0 | 120 |" in summary
    assert "probe modes: features (1), protocol (3)" in summary
    assert "Lines matching no cell: 5" in summary
    assert "kNN lines set aside (the tables are linear probes): 1" in summary


def test_latex_has_ours_beside_the_paper(cifar_results, tmp_path):
    write_report(cifar_results, tmp_path / "r", configs=CONFIGS)
    tex = (tmp_path / "r" / "table1_cifar100.tex").read_text()
    assert r"N (x10\^{}3) & D (x10\^{}-3) & SimCLR & B.T. & BYOL" in tex
    assert (
        r"5 & 0.1 & 38.20 $\pm$ 0.28 [2] / 37.95 (+0.25) & - / 44.30 & - / 41.14 & - / 14.06 & "
        r"- / 44.06 & - / 12.51 & - / 15.74 \\"
    ) in tex
    assert r"57.50$^\dagger$ [1] / 58.28 (-0.78)" in tex
    assert tex.count(r"\begin{tabular}{ll|rrrrrrr}") == 1 and r"\end{table}" in tex


def _nonblank(png: Path, size: tuple[int, int]) -> None:
    image = Image.open(png).convert("RGB")
    assert image.size == size
    pixels = np.asarray(image).reshape(-1, 3)
    coloured = (np.abs(pixels.astype(int) - pixels.mean(axis=1, keepdims=True)) > 30).any(axis=1)
    assert (pixels < 250).any(axis=1).mean() > 0.02  # ink, not a white page
    assert coloured.sum() > 200  # the coloured lines and band


def test_accuracy_against_d_png(cifar_results, tmp_path):
    written = write_report(cifar_results, tmp_path / "r", configs=CONFIGS, dpi=80)
    png = tmp_path / "r" / "table1_cifar100_acc_vs_D.png"
    assert png in written["table1_cifar100"]
    _nonblank(png, (400, 300))


def _key(table, cell_id):
    return resolve_cell(load_experiment(table, CONFIGS).cell(cell_id), CONFIGS).run_key


def test_fig3_bars_by_run_key_in_the_checkpoint_path(tmp_path):
    n_b, n_ab = 63_345, 128_345
    records = [
        line(
            "simclr",
            n_b,
            72.0,
            dataset="imagenet100",
            checkpoint=f"runs/{_key('fig3_imagenet100', 'simclr-B')}/seed0/last.ckpt",
        )
    ]
    for cell, acc in (("simclr-in_web", 72.9), ("simclr-out_web", 71.1)):
        records.append(
            line(
                "simclr",
                n_ab,
                acc,
                dataset="imagenet100",
                checkpoint=f"runs/{_key('fig3_imagenet100', cell)}/seed0/x.ckpt",
            )
        )
    records.append(line("simclr", n_ab, 70.0, dataset="imagenet100"))  # no run_key: 5 sets fit
    results = write_lines(tmp_path / "r.jsonl", records)
    out = tmp_path / "out"
    written = write_report(results, out, configs=CONFIGS, dpi=40)
    md = (out / "fig3_imagenet100.md").read_text()
    assert "| B | 72.0 [1] / 72.3 (-0.3) |" in md
    assert "| B u A_In_Web | 72.9 [1] / n/a |" in md
    assert "| B u A_Out_Web | 71.1 [1] / n/a |" in md
    summary = (out / "report.md").read_text()
    assert "Line 4 fits several cells (fig3_imagenet100/simclr-in_web, " in summary
    png = out / "fig3_imagenet100.png"
    assert png in written["fig3_imagenet100"]
    _nonblank(png, (800, 300))


def test_one_line_fills_every_table_that_shares_its_run(tmp_path):
    results = write_lines(
        tmp_path / "r.jsonl",
        [line("mocov3", 128_117, 58.3, dataset="imagenet", backbone="resnet50", c=98_000_000)],
    )
    write_report(results, tmp_path / "o", configs=CONFIGS, draw=False)
    for table, row in (
        ("table2_imagenet_yfcc", "| ImageNet | 0.128 | 1.31 | 58.3 [1] / 58.1 (+0.2) |"),
        ("table4_normalization", "| ImageNet | 98 | 0.128 | 1.31 | 58.3 [1] / 58.1 (+0.2) |"),
        ("supp_architectures", "| ImageNet | 98 | 0.128 | 1.31 | 58.3 [1] / 58.1 (+0.2) |"),
        (
            "supp_label_fraction_in_domain",
            "| ImageNet | 0.128 | 1.31 | - / 43.9 | - / 47.4 | - / 55.2 | 58.3 [1] / 58.1 (+0.2) |",
        ),
    ):
        assert row in (tmp_path / "o" / f"{table}.md").read_text(), table
    assert not (tmp_path / "o" / "table2_imagenet_yfcc_acc_vs_D.png").exists()


def test_requested_table_without_results_lists_all_missing(cifar_results, tmp_path):
    write_report(
        cifar_results, tmp_path / "o", tables=["supp_noncontrastive"], configs=CONFIGS, draw=False
    )
    md = (tmp_path / "o" / "supp_noncontrastive.md").read_text()
    assert "0 of 36 cells have results" in md
    assert "Missing (36): supp_noncontrastive/barlow_twins-in0.1 -> imagenet@1, " in md


def test_cli_writes_the_report(cifar_results, tmp_path, capsys):
    assert main(["report", str(cifar_results), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "report.tex").read_text().count(r"\begin{table}") == 1
    assert "table1_cifar100:" in capsys.readouterr().out


def test_missing_results_file_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path / "none.jsonl")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: results file {tmp_path / 'none.jsonl'} does not exist"


def test_malformed_line_is_one_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(line("simclr", 5000, 38.0)) + "\n{not json\n")
    with pytest.raises(UserError) as err:
        read_results(path)
    assert str(err.value).startswith(f"{path}:2: not a JSON line (")
    assert "\n" not in str(err.value)


def test_line_without_accuracy_is_one_line(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", [{"method": "simclr"}])
    with pytest.raises(UserError) as err:
        read_results(path)
    assert str(err.value) == f"{path}:1: the line has no numeric acc1"


def test_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("[1, 2]\n")
    with pytest.raises(UserError) as err:
        read_results(path)
    assert str(err.value) == f"{path}:1: a result line must be a JSON object"


def test_a_line_that_trained_another_budget_is_not_filed_under_its_folders_cell(tmp_path):
    """A run under ``--set budget.C=5e6`` written into the C = 50M cell's folder (before run keys
    held overrides) is not that cell's number: it is filed by its own C, and the report says so."""
    folder = f"runs/{_key('table1_cifar100', 'simclr-f0.1')}/seed0/last.ckpt"
    results = write_lines(
        tmp_path / "r.jsonl",
        [
            line("simclr", 5000, 30.0, c=5_000_000, checkpoint=folder),
            line("simclr", 5000, 38.0, checkpoint=folder),
        ],
    )
    write_report(results, tmp_path / "o", tables=["table1_cifar100"], configs=CONFIGS, draw=False)
    md = (tmp_path / "o" / "table1_cifar100.md").read_text()
    assert "| 5 | 0.1 | 38.00 [1] / 37.95 (+0.05) |" in md and "30.0" not in md
    summary = (tmp_path / "o" / "report.md").read_text()
    assert (
        "Line 1 is in a run's folder but it trained C=5,000,000, the cell simclr-f0.1 "
        "C=50,000,000: filed by its own C" in summary
    )
    assert "Lines matching no cell: 1" in summary
