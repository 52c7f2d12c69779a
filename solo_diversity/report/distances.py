# SPDX-License-Identifier: MIT
"""Table 3 in the paper's layout: our VisualDNA and FID distances beside the paper's 36 numbers.

Our values are the distance list's results (``<distances>/<cell id>.json``, one per cell of
``yaml_configs/experiments/table3_distances.yaml``, :mod:`solo_diversity.experiments.distances`).
A cell of the paper's table (``report/paper/table3_distances.yaml``) and a distance cell are the
same when they agree on the metric (``vdna``/``fid``), the extractor (the paper row's backbone),
the pretraining set and the downstream set. Each cell reads ``ours / paper (ours - paper)``, ``-``
where we have no value yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from solo_diversity.experiments.cells import DistanceSpec, ExperimentList, load_experiment
from solo_diversity.experiments.distances import read_distances
from solo_diversity.report.paper_tables import PaperCell, PaperTable, load_paper_table
from solo_diversity.report.render import latex_blocks, markdown_blocks


@dataclass(frozen=True)
class DistancePairing:
    """Table 3's paper cells, each with its distance cell (None when the list lacks it)."""

    experiment: ExperimentList
    paper: PaperTable
    cells: dict[tuple[str, str, str], DistanceSpec | None]

    @property
    def unpaired(self) -> list[PaperCell]:
        return [c for c in self.paper.cells() if self.cells[c.key] is None]


def _same(paper: PaperCell, spec: DistanceSpec) -> bool:
    return (
        paper.metric == spec.kind
        and paper.backbone == spec.extractor
        and paper.pretrain_dataset == spec.pretrain
        and paper.probe_dataset == spec.downstream
    )


def pair_distances(name: str = "table3_distances", configs: Path | None = None) -> DistancePairing:
    """Pair the distance list ``name`` with the paper table it names."""
    experiment = load_experiment(name, configs)
    paper = load_paper_table(experiment.paper)
    cells = {
        c.key: next((d for d in experiment.distances if _same(c, d)), None) for c in paper.cells()
    }
    return DistancePairing(experiment, paper, cells)


def _text(table: PaperTable, paper: PaperCell, ours: float | None) -> str:
    fmt = table.format_value
    text = f"{'-' if ours is None else fmt(round(ours, table.decimals))} / {fmt(paper.value)}"
    if ours is not None and paper.value is not None:
        text += f" ({ours - paper.value:+.{table.decimals}f})"
    return text


def _rows(pairing: DistancePairing, values: dict[str, float]):  # type: ignore[no-untyped-def]
    table = pairing.paper
    for block in table.blocks:
        rows = []
        for labels, cells in zip(block.rows, block.cells, strict=True):
            texts = []
            for cell in cells:
                spec = pairing.cells[cell.key]
                texts.append(_text(table, cell, None if spec is None else values.get(spec.id)))
            rows.append((labels, texts))
        yield block, rows


def distance_markdown(pairing: DistancePairing, values: dict[str, float]) -> str:
    """Table 3 as Markdown: ours / paper (diff) per cell, then the cells still missing."""
    table = pairing.paper
    specs = [s for s in pairing.cells.values() if s is not None]
    missing = [s.id for s in specs if s.id not in values]
    out = [
        f"## {table.title}",
        "",
        f"{table.source}; cell list `{pairing.experiment.table}`: {len(specs) - len(missing)} of "
        f"{len(specs)} distances computed. Each cell: ours / paper (ours - paper); lower is "
        "closer.",
        "",
    ]
    out += markdown_blocks(table, _rows(pairing, values))
    if missing:
        out += [f"Missing ({len(missing)}): " + ", ".join(missing), ""]
    out += [f"Note: {note}" for note in table.notes]
    return "\n".join(out).rstrip() + "\n"


def distance_latex(pairing: DistancePairing, values: dict[str, float]) -> str:
    """Table 3 as a LaTeX ``table``, one ``tabular`` per block."""
    return latex_blocks(pairing.paper, _rows(pairing, values))


def distance_values(folder: Path | None, pairing: DistancePairing) -> dict[str, float]:
    """Our values by cell id (none when the folder does not exist)."""
    if folder is None or not folder.is_dir():
        return {}
    return read_distances(folder, pairing.experiment)
