"""The paper's numbers stored as package data, checked against the paper's text."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from solo_diversity.report.paper_tables import load_paper_table, paper_table_names

NAME = "pretraining_data_diversity_ssl.txt"


def _origin_checkout(repo: Path) -> list[Path]:
    """The checkout a clone was made from, when that is a local folder (CI tests a fresh clone)."""
    try:
        url = subprocess.run(
            ["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return []
    return [Path(url)] if url and Path(url).is_dir() else []


def _find_paper() -> Path | None:
    """The paper's text: SOLO_DIV_PAPER_TEXT, else ``shared/paper`` beside the checkout."""
    if os.environ.get("SOLO_DIV_PAPER_TEXT"):
        return Path(os.environ["SOLO_DIV_PAPER_TEXT"])
    repo = Path(__file__).resolve().parents[2]
    for checkout in [repo, *_origin_checkout(repo)]:
        candidate = checkout.resolve().parent / "shared" / "paper" / NAME
        if candidate.is_file():
            return candidate
    return None


_FOUND = _find_paper()
PAPER = _FOUND or Path(NAME)
# The paper's text is not ours to ship; a checkout without it beside it cannot run these checks.
needs_paper = pytest.mark.skipif(
    _FOUND is None, reason=f"set SOLO_DIV_PAPER_TEXT to the paper's text ({NAME})"
)

# (block label, rows, columns) of every block, read off the paper's layout.
SHAPES = {
    "table1_cifar100": [("CIFAR-100", 3, 7)],
    "table1_tinyimagenet": [("TinyImageNet", 3, 7)],
    "fig3_imagenet100": [("ImageNet-100", 7, 7)],
    "table2_imagenet_yfcc": [
        ("SimCLR / ResNet-50", 5, 6),
        ("SimCLR / ViT-B/16", 5, 6),
        ("MoCoV3 / ResNet-50", 5, 6),
        ("MoCoV3 / ViT-B/16", 5, 6),
    ],
    "table3_distances": [("VisualDNA", 4, 6), ("FID", 2, 6)],
    "table4_normalization": [("ResNet-50", 6, 1), ("ViT-B/16", 6, 1)],
    "fig4_yfcc_subsets": [
        ("SimCLR / ResNet-50", 4, 1),
        ("SimCLR / ViT-B/16", 4, 1),
        ("MoCoV3 / ResNet-50", 4, 1),
        ("MoCoV3 / ViT-B/16", 4, 1),
    ],
    "table5_label_fraction": [
        ("SimCLR / ResNet-50", 2, 4),
        ("SimCLR / ViT-B/16", 2, 4),
        ("MoCoV3 / ResNet-50", 2, 4),
        ("MoCoV3 / ViT-B/16", 2, 4),
    ],
    "supp_budget_sweep": [("SimCLR", 3, 5), ("MoCoV3", 3, 5)],
    "supp_epoch_normalized": [("ImageNet-100", 1, 7)],
    "supp_noncontrastive": [("Barlow Twins", 3, 6), ("BYOL", 3, 6)],
    "supp_architectures": [("MoCoV3", 6, 4)],
    "supp_label_fraction_in_domain": [
        ("SimCLR / ResNet-50", 4, 4),
        ("SimCLR / ViT-B/16", 4, 4),
        ("MoCoV3 / ResNet-50", 4, 4),
        ("MoCoV3 / ViT-B/16", 4, 4),
    ],
}


@pytest.fixture(scope="module")
def paper_lines() -> list[str]:
    if _FOUND is None:
        pytest.skip(f"set SOLO_DIV_PAPER_TEXT to the paper's text ({NAME})")
    return [re.sub(r"\s+", "", line) for line in PAPER.read_text().splitlines()]


def test_every_table_is_stored():
    assert paper_table_names() == sorted(SHAPES)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_block_row_and_column_counts(name):
    table = load_paper_table(name)
    got = [(b.label, len(b.rows), len(b.columns)) for b in table.blocks]
    assert got == SHAPES[name]
    assert all(len(labels) == len(table.row_header) for b in table.blocks for labels in b.rows)


def _clean_rows(name):
    table = load_paper_table(name)
    for block in table.blocks:
        for labels, cells in zip(block.rows, block.cells, strict=True):
            if all(c.text == "clean" and c.value is not None for c in cells):
                yield labels, [table.format_value(c.value) for c in cells]


def test_clean_rows_are_in_the_paper_text_next_to_their_row_label(paper_lines):
    checked = 0
    for name in sorted(SHAPES):
        for labels, values in _clean_rows(name):
            needle = "".join([*labels, *values])
            assert any(needle in line for line in paper_lines), (name, labels, values)
            checked += len(values)
    assert checked >= 300  # of 400 stored numbers; the rest are interleaved rows or figures


def test_a_wrong_number_is_not_found(paper_lines):
    labels, values = next(_clean_rows("table1_cifar100"))
    values[0] = "37.96"
    assert not any("".join([*labels, *values]) in line for line in paper_lines)


@needs_paper
def test_figure_values_printed_in_the_text():
    text = PAPER.read_text()
    fig3 = load_paper_table("fig3_imagenet100").blocks[0]
    assert fig3.cells[0][0].value == 72.3 and fig3.cells[0][0].baseline
    assert "whileBscores72.3%accuracy" in re.sub(r"\s+", "", text)
    dino = load_paper_table("supp_epoch_normalized").blocks[0].cells[0][6]
    assert (dino.method, dino.value) == ("dino", 41.14)
    assert "DINO B epoch-normalized baseline is shown in text only (Acc. 41.14)" in " ".join(
        text.split()
    )


def _column(name, block, column):
    b = next(b for b in load_paper_table(name).blocks if b.label == block)
    j = b.columns.index(column)
    return [row[j].value for row in b.cells]


def _row(name, block, index):
    b = next(b for b in load_paper_table(name).blocks if b.label == block)
    return [c.value for c in b.cells[index]]


def test_tables_that_share_runs_agree():
    # Supp. Table 1's C = 50M column is Table 1(b)'s SimCLR / MoCoV3 column.
    assert _column("supp_budget_sweep", "SimCLR", "C=50") == _column(
        "table1_tinyimagenet", "TinyImageNet", "SimCLR"
    )
    assert _column("supp_budget_sweep", "MoCoV3", "C=50") == _column(
        "table1_tinyimagenet", "TinyImageNet", "MoCoV3"
    )
    # Table 4 is Supp. Table 3's ResNet-50 and ViT-B/16 columns (decodes the interleaved rows),
    # but for ResNet-50 at C = 294M, N = 0.128M: the main table prints 57.4, the supplement 57.5.
    main_table = _column("table4_normalization", "ResNet-50", "ImageNet")
    supplement = _column("supp_architectures", "MoCoV3", "ResNet-50")
    assert (main_table[3], supplement[3]) == (57.4, 57.5)
    assert main_table[:3] + main_table[4:] == supplement[:3] + supplement[4:]
    assert _column("table4_normalization", "ViT-B/16", "ImageNet") == _column(
        "supp_architectures", "MoCoV3", "ViT-B/16"
    )
    for block in (
        "SimCLR / ResNet-50",
        "SimCLR / ViT-B/16",
        "MoCoV3 / ResNet-50",
        "MoCoV3 / ViT-B/16",
    ):
        # Table 5's ImageNet row is Supp. Table 4's N = 1.281M row; its 100% column is Table 2's.
        assert _row("table5_label_fraction", block, 0) == _row(
            "supp_label_fraction_in_domain", block, 3
        )
        imagenet_probe = _column("table2_imagenet_yfcc", block, "ImageNet")
        assert _column("table5_label_fraction", block, "100%") == [
            imagenet_probe[3],
            imagenet_probe[4],
        ]
        assert _column("supp_label_fraction_in_domain", block, "100%") == imagenet_probe[:4]


def test_cells_carry_every_attribute():
    for name in sorted(SHAPES):
        for cell in load_paper_table(name).cells():
            assert cell.pretrain_dataset and cell.probe_dataset, cell
            if cell.metric == "acc1":
                assert cell.method and cell.backbone and cell.N and cell.label_fraction, cell
                assert cell.C or (cell.mode == "epochs" and cell.epochs), cell
                assert cell.fraction is not None or cell.pretrain_dataset.startswith("b_union")


@needs_paper
def test_interleaved_rows_use_the_characters_of_their_text():
    # Table 5's ViT-B/16 rows are printed interleaved: both rows' characters, in some order.
    text = PAPER.read_text().splitlines()
    line = next(x for x in text if x.startswith("ViT-B/16 Im Ya Fg CeN Cet"))
    simclr = line.split("ViT-B/16", 2)[1]
    got = sorted(c for c in simclr if not c.isspace())
    table = load_paper_table("table5_label_fraction")
    block = next(b for b in table.blocks if b.label == "SimCLR / ViT-B/16")
    want = "".join(
        " ".join(labels) + "".join(table.format_value(c.value) for c in cells)
        for labels, cells in zip(block.rows, block.cells, strict=True)
    )
    assert got == sorted(c for c in want if not c.isspace())
