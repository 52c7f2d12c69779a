# SPDX-License-Identifier: MIT
"""The report's figures, each written as PDF, SVG and PNG (matplotlib, no display needed).

:func:`plot_acc_vs_d` draws accuracy against the diversity D = N / C on a log axis for every
series of a table (a paper column within a block: a method, a downstream set, a budget): one line
per series with the mean over seeds and the sample std as error bars, and the paper's numbers as
open markers on a dashed line of the same colour; Table 1 and Figure 4 are this plot. Rows of
untrained floors (the mini paper's raw pixels and random init) have no D: they are level lines
with a ±std band that every trained point is read against.
:func:`plot_fig3` draws Figure 3: for each method, bars for the B u A sets against the B baseline.

The style is for slides: large type, a short panel title (the block's label) and no figure title.
The y-range never auto-zooms, where a one-point difference would fill the plot: it is fixed
(``ylim``) or spans at least :data:`MIN_SPAN` points around our numbers and the paper's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from solo_diversity.errors import UserError
from solo_diversity.report.assign import Assignment
from solo_diversity.report.match import Pairing
from solo_diversity.report.render import Measured, table_numbers

FORMATS = ("pdf", "svg", "png")
DEFAULT_DPI = 200
MIN_SPAN = 10.0  # accuracy points the y-axis spans at least
PANEL = (5.0, 3.75)  # inches per panel
STYLE = {"font.size": 11, "axes.titlesize": 12, "legend.fontsize": 8, "svg.hashsalt": "solo-div"}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UserError("figures need matplotlib: pip install 'solo-diversity[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def y_range(
    values: Iterable[float], fixed: tuple[float, float] | None = None
) -> tuple[float, float]:
    """The y-limits: ``fixed``, else at least ``MIN_SPAN`` (+20%) around ``values``, in 5s.

    Args:
        values: every number drawn (our means +- std, the paper's values), in %.
        fixed: the limits the user asked for.

    Returns:
        (low, high), within [0, 100] for data within it.
    """
    if fixed is not None:
        return fixed
    got = list(values)
    lo, hi = (min(got), max(got)) if got else (0.0, 100.0)
    centre, half = (lo + hi) / 2, 0.6 * max(hi - lo, MIN_SPAN)
    low, high = 5 * math.floor((centre - half) / 5), 5 * math.ceil((centre + half) / 5)
    return float(max(low, 0 if lo >= 0 else low)), float(min(high, 100 if hi <= 100 else high))


def _spread(m: Measured) -> float:
    return m.std or 0.0


def _drawn(ours: dict[Any, Measured], paper: Iterable[float | None]) -> list[float]:
    """Every y value a figure shows: means +- std, and the paper's numbers."""
    out = [v for m in ours.values() for v in (m.mean - _spread(m), m.mean + _spread(m))]
    return out + [v for v in paper if v is not None]


def _grid_shape(n: int) -> tuple[int, int]:
    cols = min(n, 4)
    return math.ceil(n / cols), cols


def _title(ax: Any, text: str) -> None:
    """A panel title only when it is short: a long one belongs in the caption."""
    if len(text) <= 40:
        ax.set_title(text)


def save(fig: Any, stem: Path, dpi: int) -> list[Path]:
    """Write ``fig`` as ``<stem>.pdf``, ``.svg`` and ``.png`` (the PNG is figsize x dpi pixels)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.parent / f"{stem.name}.{ext}" for ext in FORMATS]
    for path in paths:
        fig.savefig(path, dpi=dpi, metadata={"Date": None} if path.suffix == ".pdf" else None)
    return paths


def _legend(ax: Any, handles: list[Any], has_paper: bool) -> None:
    """Series colours in the paper's column order, then what filled and open markers mean."""
    from matplotlib.lines import Line2D

    labels = [h.get_label() for h in handles]
    style = [Line2D([], [], color="0.3", marker="o", label="ours: mean ± std")]
    if has_paper:
        style.append(Line2D([], [], color="0.3", ls="--", marker="o", mfc="none", label="paper"))
    ax.legend(handles=[*handles, *style], labels=[*labels, *(h.get_label() for h in style)])


def plot_acc_vs_d(
    pairing: Pairing,
    assignment: Assignment,
    stem: Path,
    dpi: int = DEFAULT_DPI,
    ylim: tuple[float, float] | None = None,
) -> list[Path]:
    """Accuracy against D for every series of a table; no files when it has no result yet.

    Args:
        pairing: the table's slots.
        assignment: the result lines per slot.
        stem: the path of the files without their suffix.
        dpi: the PNG's resolution.
        ylim: fixed y-limits (default: at least ``MIN_SPAN`` around ours and the paper's).

    Returns:
        The PDF, SVG and PNG written.
    """
    ours = table_numbers(pairing, assignment)
    if not ours:
        return []
    plt = _pyplot()
    table = pairing.paper
    d_of = {s.paper.key: s.cell.plan.diversity for s in pairing.slots}
    limits = y_range(_drawn(ours, (c.value for c in table.cells())), ylim)
    rows, cols = _grid_shape(len(table.blocks))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            rows, cols, figsize=(PANEL[0] * cols, PANEL[1] * rows), squeeze=False
        )
        for ax, block in zip(axes.flat, table.blocks, strict=False):
            trained = [row for row in block.cells if row[0].untrained is None]
            handles = [
                _series(ax, column, f"C{j % 10}", [row[j] for row in trained], d_of, ours)
                for j, column in enumerate(block.columns)
            ]
            handles += _floors(ax, block, ours)
            ax.set_xscale("log")
            ax.set_ylim(*limits)
            ax.set_xlabel("D = N / C")
            ax.set_ylabel("top-1 (%)")
            _title(ax, block.label)
            ax.grid(alpha=0.3)
            has_paper = any(c.value is not None for row in block.cells for c in row)
            _legend(ax, [h for h in handles if h is not None], has_paper)
        for ax in list(axes.flat)[len(table.blocks) :]:
            ax.axis("off")
        fig.tight_layout()
        paths = save(fig, stem, dpi)
    plt.close(fig)
    return paths


FLOOR_STYLES = {"raw_pixels": ("raw pixels", ":"), "random_init": ("random init", "-.")}


def _floors(ax: Any, block: Any, ours: dict[Any, Measured]) -> list[Any]:
    """The untrained rows (raw pixels, random init) as level lines with a ±std band.

    They saw no data, so they have no D: a line across the plot is what a trained point must
    clear. Each row is drawn from its first column with a result.
    """
    handles = []
    for labels, row in zip(block.rows, block.cells, strict=True):
        got = next((ours[c.key] for c in row if c.untrained and c.key in ours), None)
        if got is None:
            continue
        name, style = FLOOR_STYLES.get(row[0].untrained, (labels[0], "--"))
        handles.append(ax.axhline(got.mean, color="0.35", ls=style, lw=1.5, label=name))
        if got.std:
            ax.axhspan(got.mean - got.std, got.mean + got.std, color="0.5", alpha=0.15, lw=0)
    return handles


def _series(
    ax: Any,
    label: str,
    color: str,
    cells: list[Any],
    d_of: dict[Any, float],
    ours: dict[Any, Measured],
) -> Any:
    """One paper column: our means with std bars, the paper's values as open markers.

    Returns:
        The artist that stands for the column in the legend (None when nothing is drawn).
    """
    cells = sorted((c for c in cells if c.key in d_of), key=lambda c: d_of[c.key])
    got = [(d_of[c.key], ours[c.key]) for c in cells if c.key in ours]
    handle = None
    if got:
        handle = ax.errorbar(
            [d for d, _ in got],
            [m.mean for _, m in got],
            yerr=[_spread(m) for _, m in got],
            fmt="-o",
            color=color,
            capsize=3,
            ms=5,
            label=label,
        )
    published = [(d_of[c.key], c.value) for c in cells if c.value is not None]
    if published:
        (line,) = ax.plot(
            *zip(*published, strict=True), "--o", mfc="none", color=color, alpha=0.7, ms=6
        )
        line.set_label(label)
        handle = handle or line
    return handle


def plot_fig3(
    pairing: Pairing,
    assignment: Assignment,
    stem: Path,
    dpi: int = DEFAULT_DPI,
    ylim: tuple[float, float] | None = None,
) -> list[Path]:
    """Figure 3: per method, bars (mean, std bars) for each B u A set against B's line."""
    ours = table_numbers(pairing, assignment)
    if not ours:
        return []
    plt = _pyplot()
    block = pairing.paper.blocks[0]
    base = next(i for i, row in enumerate(block.cells) if row[0].baseline)
    bars = [i for i in range(len(block.rows)) if i != base]
    limits = y_range(_drawn(ours, (c.value for c in pairing.paper.cells())), ylim)
    rows, cols = _grid_shape(len(block.columns))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            rows, cols, figsize=(PANEL[0] * cols, PANEL[1] * rows), squeeze=False
        )
        for j, (ax, method) in enumerate(zip(axes.flat, block.columns, strict=False)):
            _bars(ax, [ours.get(block.cells[i][j].key) for i in bars])
            _baselines(ax, ours.get(block.cells[base][j].key), block.cells[base][j].value)
            ax.set_ylim(*limits)
            ax.set_xticks(range(len(bars)))
            labels = [block.rows[i][0].replace("B u ", "") for i in bars]
            ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
            _title(ax, method)
            ax.set_ylabel("top-1 (%)")
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
        for ax in list(axes.flat)[len(block.columns) :]:
            ax.axis("off")
        fig.tight_layout()
        paths = save(fig, stem, dpi)
    plt.close(fig)
    return paths


def _bars(ax: Any, got: list[Measured | None]) -> None:
    heights = [m.mean if m else 0.0 for m in got]
    errs = [_spread(m) if m else 0.0 for m in got]
    colors = [f"C{k}" for k in range(len(got))]
    ax.bar(range(len(got)), heights, yerr=errs, capsize=3, color=colors)


def _baselines(ax: Any, ours: Measured | None, paper: float | None) -> None:
    if ours is not None:
        ax.axhline(ours.mean, color="black", linestyle="--", label="B (ours)")
    if paper is not None:
        ax.axhline(paper, color="gray", linestyle=":", label="B (paper)")
