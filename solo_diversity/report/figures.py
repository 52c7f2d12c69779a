# SPDX-License-Identifier: MIT
"""The report's figures as PNG (matplotlib, no display needed).

:func:`plot_acc_vs_d` draws accuracy against the diversity D = N / C on a log axis for every
series of a table (a paper column within a block: a method, a downstream set, a budget), with the
mean over seeds, a min-max band, and the paper's numbers as open markers; Figure 4 is this plot of
``fig4_yfcc_subsets``. :func:`plot_fig3` draws Figure 3: for each method, bars for the B u A sets
against the B baseline as a dashed line.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

from solo_diversity.errors import UserError
from solo_diversity.report.match import Pairing
from solo_diversity.report.render import Measured, measured
from solo_diversity.report.results import Assignment


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UserError("figures need matplotlib: pip install 'solo-diversity[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ours(pairing: Pairing, assignment: Assignment) -> dict[tuple[str, str, str], Measured]:
    out = {}
    for slot in pairing.slots:
        found = measured(assignment.by_slot.get(slot.label, []))
        if found is not None:
            out[slot.paper.key] = found
    return out


def _grid_shape(n: int) -> tuple[int, int]:
    cols = min(n, 4)
    return math.ceil(n / cols), cols


def plot_acc_vs_d(pairing: Pairing, assignment: Assignment, path: Path) -> Path | None:
    """Accuracy against D for every series of a table; None when the table has no result yet.

    Args:
        pairing: the table's slots.
        assignment: the result lines per slot.
        path: the PNG to write.
    """
    ours = _ours(pairing, assignment)
    if not ours:
        return None
    plt = _pyplot()
    table = pairing.paper
    d_of = {s.paper.key: s.cell.plan.diversity for s in pairing.slots}
    rows, cols = _grid_shape(len(table.blocks))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, block in zip(axes.flat, table.blocks, strict=False):
        for j, column in enumerate(block.columns):
            cells = sorted((row[j] for row in block.cells), key=lambda c: d_of[c.key])
            color = f"C{j % 10}"
            xs = [d_of[c.key] for c in cells if c.key in ours]
            if xs:
                got = [ours[c.key] for c in cells if c.key in ours]
                ax.plot(xs, [m.mean for m in got], "-o", color=color, label=column, ms=4)
                ax.fill_between(
                    xs,
                    [m.low for m in got],
                    [m.high for m in got],
                    color=color,
                    alpha=0.2,
                    linewidth=0,
                )
            published = [(d_of[c.key], c.value) for c in cells if c.value is not None]
            if published:
                ax.plot(
                    *zip(*published, strict=True),
                    "--",
                    marker="o",
                    mfc="none",
                    color=color,
                    alpha=0.6,
                    ms=5,
                    label=None if xs else f"{column} (paper)",
                )
        ax.set_xscale("log")
        ax.set_xlabel("D = N / C")
        ax.set_ylabel("top-1 (%)")
        ax.set_title(block.label, fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(table.blocks) :]:
        ax.axis("off")
    legend = "lines: ours (mean, min-max band)"
    if any(c.value is not None for c in table.cells()):
        legend += "; open markers: paper"
    # a one-panel figure is narrow: wrap the title to its width instead of clipping it
    title = "\n".join(textwrap.wrap(table.title, width=max(40, 45 * cols)))
    fig.suptitle(f"{title}\n{legend}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_fig3(pairing: Pairing, assignment: Assignment, path: Path) -> Path | None:
    """Figure 3: per method, bars for each B u A set against B's accuracy (dashed line)."""
    ours = _ours(pairing, assignment)
    if not ours:
        return None
    plt = _pyplot()
    table = pairing.paper
    block = table.blocks[0]
    base = next(i for i, row in enumerate(block.cells) if row[0].baseline)
    bars = [i for i in range(len(block.rows)) if i != base]
    rows, cols = _grid_shape(len(block.columns))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for j, (ax, method) in enumerate(zip(axes.flat, block.columns, strict=False)):
        got = [ours.get(block.cells[i][j].key) for i in bars]
        heights = [m.mean if m else 0.0 for m in got]
        errs = [
            [m.mean - m.low if m else 0.0 for m in got],
            [m.high - m.mean if m else 0.0 for m in got],
        ]
        ax.bar(range(len(bars)), heights, yerr=errs, color=[f"C{k}" for k in range(len(bars))])
        b_ours = ours.get(block.cells[base][j].key)
        if b_ours is not None:
            ax.axhline(b_ours.mean, color="black", linestyle="--", label="B (ours)")
        b_paper = block.cells[base][j].value
        if b_paper is not None:
            ax.axhline(b_paper, color="gray", linestyle=":", label="B (paper)")
        filled = [h for h in heights if h] + ([b_ours.mean] if b_ours else [])
        if filled:
            ax.set_ylim(max(0.0, min(filled) - 5), max(filled) + 3)
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels(
            [block.rows[i][0].replace("B u ", "") for i in bars],
            rotation=45,
            ha="right",
            fontsize=7,
        )
        ax.set_title(method, fontsize=9)
        ax.set_ylabel("top-1 (%)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(block.columns) :]:
        ax.axis("off")
    fig.suptitle(table.title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
