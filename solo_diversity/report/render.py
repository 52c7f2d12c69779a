# SPDX-License-Identifier: MIT
"""A paper table in its own layout, as Markdown and LaTeX, with our number beside the paper's.

Each cell reads ``mean ± std [n] / paper (mean - paper)``: the mean and sample standard deviation
(ddof = 1) over the n seeds of the probe lines assigned to the cell
(:mod:`solo_diversity.report.assign`); one seed shows no std, ``-`` marks a cell with no line
yet and ``n/a`` one where the paper prints no number. A cell measured by a probe other than
solo-learn's protocol is marked ``†``. Under each table: the cells with results, one line each
(seeds, probe mode), and the cells still missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from statistics import mean, stdev

from solo_diversity.experiments.results import Result, per_seed
from solo_diversity.report.assign import Assignment
from solo_diversity.report.match import Pairing, Slot
from solo_diversity.report.paper_tables import PaperBlock, PaperCell, PaperTable

PROTOCOL = "protocol"


@dataclass(frozen=True)
class Measured:
    """Our numbers for one slot: one per seed (the newest line of each)."""

    values: tuple[float, ...]
    seeds: tuple[str, ...]
    modes: tuple[str, ...]

    @property
    def mean(self) -> float:
        return mean(self.values)

    @property
    def std(self) -> float | None:
        """The sample standard deviation (ddof = 1) over seeds; None for one seed."""
        return stdev(self.values) if len(self.values) > 1 else None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


def measured(results: list[Result]) -> Measured | None:
    """Collapse a slot's lines to one per seed; None when there are none."""
    if not results:
        return None
    latest = per_seed(results)
    return Measured(
        values=tuple(r.acc1 for r in latest.values()),
        seeds=tuple(str(s) for s in latest),
        modes=tuple(sorted({r.probe_mode for r in latest.values()})),
    )


def table_numbers(pairing: Pairing, assignment: Assignment) -> dict[tuple[str, str, str], Measured]:
    """Our numbers keyed by the paper cell's (block, row, column)."""
    out = {}
    for slot in pairing.slots:
        found = measured(assignment.by_slot.get(slot.label, []))
        if found is not None:
            out[slot.paper.key] = found
    return out


def ours_text(table: PaperTable, ours: Measured | None) -> str:
    """``mean ± std [n]`` (``mean [1]`` for one seed, ``-`` for none), ``†`` off protocol."""
    if ours is None:
        return "-"
    text = table.format_value(round(ours.mean, table.decimals))
    if any(m != PROTOCOL for m in ours.modes):
        text += "†"
    if ours.std is not None:
        text += f" ± {ours.std:.{table.decimals}f}"
    return text + f" [{ours.n}]"


def cell_text(table: PaperTable, paper: PaperCell, ours: Measured | None) -> str:
    """``ours / paper (diff)`` for one cell."""
    fmt = table.format_value
    left = ours_text(table, ours)
    text = f"{left} / {fmt(paper.value)}"
    if ours is not None and paper.value is not None:
        text += f" ({ours.mean - paper.value:+.{table.decimals}f})"
    return text


Rows = list[tuple[tuple[str, ...], list[str]]]


def _grid(
    table: PaperTable, numbers: dict[tuple[str, str, str], Measured]
) -> Iterator[tuple[PaperBlock, Rows]]:
    """Each block with its rows: (row labels, cell texts)."""
    for block in table.blocks:
        rows = [
            (labels, [cell_text(table, c, numbers.get(c.key)) for c in cells])
            for labels, cells in zip(block.rows, block.cells, strict=True)
        ]
        yield block, rows


def _slot_lines(pairing: Pairing, assignment: Assignment) -> tuple[list[str], list[str]]:
    done, missing = [], []
    for slot in pairing.slots:
        ours = measured(assignment.by_slot.get(slot.label, []))
        if ours is None:
            missing.append(slot.label)
            continue
        per = ", ".join(f"seed {s}: {v:.2f}" for s, v in zip(ours.seeds, ours.values, strict=True))
        spread = "" if ours.std is None else f" ± {ours.std:.2f}"
        done.append(
            f"{slot.label}: {per}; mean {ours.mean:.2f}{spread}, n={ours.n} (min "
            f"{ours.low:.2f}, max {ours.high:.2f}); probe {'/'.join(ours.modes)}"
        )
    return done, missing


def markdown(pairing: Pairing, assignment: Assignment) -> str:
    """The table as Markdown: one pipe table per block, then the cells found and missing."""
    table = pairing.paper
    numbers = table_numbers(pairing, assignment)
    done, missing = _slot_lines(pairing, assignment)
    out = [
        f"## {table.title}",
        "",
        f"{table.source}; cell list `{pairing.experiment.table}`: {len(done)} of "
        f"{len(pairing.slots)} cells have results. Each cell: ours / paper (ours - paper), ours "
        "the mean ± sample std over [n] seeds; † a probe other than solo-learn's protocol.",
        "",
    ]
    out += markdown_blocks(table, _grid(table, numbers))
    out += ["Results:", ""] + [f"- {line}" for line in done] + ([""] if done else [])
    if missing:
        out += [f"Missing ({len(missing)}): " + ", ".join(missing), ""]
    out += [f"Note: {note}" for note in table.notes]
    return "\n".join(out).rstrip() + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in a label or cell."""
    subs: dict[str, str] = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "^": r"\^{}",
        "~": r"\~{}",
        "†": r"$^\dagger$",
        "±": r"$\pm$",
    }
    return "".join(subs.get(ch, ch) for ch in text)


def markdown_blocks(
    table: PaperTable, blocks: Iterable[tuple[PaperBlock, Iterable[tuple[Sequence[str], ...]]]]
) -> list[str]:
    """Markdown lines of a paper table's blocks: a bold label, then a pipe table of its rows."""
    out: list[str] = []
    for block, rows in blocks:
        head = [*table.row_header, *block.columns]
        out += [
            f"**{block.label}**",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "|".join(["---"] * len(table.row_header) + ["---:"] * len(block.columns)) + "|",
            *("| " + " | ".join([*labels, *cells]) + " |" for labels, cells in rows),
            "",
        ]
    return out


def latex(pairing: Pairing, assignment: Assignment) -> str:
    """The table as a LaTeX ``table`` with one ``tabular`` block per paper block."""
    table = pairing.paper
    return latex_blocks(table, _grid(table, table_numbers(pairing, assignment)))


def latex_blocks(
    table: PaperTable, blocks: Iterable[tuple[PaperBlock, Iterable[tuple[Sequence[str], ...]]]]
) -> str:
    """A paper table as a LaTeX ``table``: one ``tabular`` per (block, rows of (labels, cells)).

    Args:
        table: the paper table (its ``title``, ``source`` and ``row_header``).
        blocks: each block (its ``label`` and ``columns``) with its rows of label and cell texts.
    """
    out = [
        f"% {table.title} ({table.source}); cell: ours / paper (ours - paper)",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}: ours (mean $\pm$ std [seeds]) / paper "
        r"(ours $-$ paper)}",
    ]
    for block, rows in blocks:
        n_lab, n_col = len(table.row_header), len(block.columns)
        out += [
            rf"\begin{{tabular}}{{{'l' * n_lab}|{'r' * n_col}}}",
            r"\hline",
            rf"\multicolumn{{{n_lab + n_col}}}{{l}}{{{latex_escape(block.label)}}} \\",
            " & ".join(latex_escape(h) for h in [*table.row_header, *block.columns]) + r" \\",
            r"\hline",
            *(
                " & ".join(latex_escape(x) for x in [*labels, *cells]) + r" \\"
                for labels, cells in rows
            ),
            r"\hline",
            r"\end{tabular}",
            "",
        ]
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def slots_of(pairings: list[Pairing]) -> list[Slot]:
    """Every slot of every table."""
    return [s for p in pairings for s in p.slots]
