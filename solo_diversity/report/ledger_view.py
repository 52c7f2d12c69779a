# SPDX-License-Identifier: MIT
"""Terminal rendering of one run's ledger: plan, counted images and steps, visit proof, histogram.

It renders the summary that ``solo-div ledger show`` builds
(:func:`solo_diversity.report.ledger_cli.ledger_report`) with the house tables of
:mod:`~solo_diversity.console`; it reads no files and computes no proof.
"""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from solo_diversity.budget.plan import BudgetPlan
from solo_diversity.console import plan_table

BAR_WIDTH = 40


def _count(n: float) -> str:
    return f"{n:,.0f}"


def _yes(value: bool | None, unknown: str = "-") -> str:
    return unknown if value is None else ("yes" if value else "NO")


def counted_table(report: dict[str, Any]) -> Table:
    """Planned versus counted images and steps, resumes, world size and ``match``."""
    plan = report["plan"]
    unfinished = report["status"] != "finished"
    table = Table(title=f"Budget ledger ({report['status']})")
    for col in ("", "planned", "counted"):
        table.add_column(col, justify="right")
    table.add_row("images", _count(plan["C_eff"]), _count(report["images_seen"]))
    table.add_row("optimizer steps", _count(plan["steps"]), _count(report["optimizer_steps"]))
    table.add_row("resumes", "", str(report["resumes"]))
    world = report["world_size"]
    table.add_row("world size", "", "?" if world is None else str(world))
    table.add_row("match", "", "unfinished" if unfinished else _yes(report["match"]))
    return table


def proof_table(visits: dict[str, Any]) -> Table:
    """The visit proof: min/max against the allowed range, unseen, outside, totals, verdict."""
    low, high = visits["allowed"]
    caption = "\n".join(visits["problems"]) or None
    table = Table(title="Visit proof", caption=caption, caption_justify="left")
    for col in ("", "value", "allowed"):
        table.add_column(col, justify="right")
    table.add_row("visits per image (min)", str(visits["min"]), f">= {low}")
    table.add_row("visits per image (max)", str(visits["max"]), f"<= {high}")
    table.add_row("images unseen", _count(visits["unseen"]), "")
    substituted = visits.get("unreadable", 0)  # their visits went to the next readable image
    if substituted:
        table.add_row("unreadable, replaced by the next", _count(substituted), "")
    table.add_row("visits outside the subset", _count(visits["outside"]), "0")
    table.add_row("visits in all", _count(visits["images_seen"]), _count(visits["expected_images"]))
    table.add_row(
        f"passes ({visits['whole_passes']} whole + {_count(visits['last_pass_images'])} images)",
        f"{visits['passes']:.3f}",
        "",
    )
    table.add_row("dropped per pass (N mod G)", _count(visits["dropped_per_pass"]), "")
    table.add_row("E' = images seen / N", f"{visits['epochs_seen']:.3f}", "")
    table.add_row("misses fit the dropped tails", _yes(visits["feasible"]), "yes")
    table.add_row("equal to the sampler's replay", _yes(visits["exact"], "not checked"), "yes")
    table.add_row("visits ok", _yes(visits["visits_ok"]), "yes")
    return table


def histogram_lines(histogram: dict[str, int], width: int = BAR_WIDTH) -> list[str]:
    """One text bar per visit count: ``'  2 visits │████ 1,268 images'``, fewest visits first.

    Args:
        histogram: {visits (as a string): number of images}.
        width: characters of the longest bar.

    """
    if not histogram:
        return ["(no images)"]
    most = max(histogram.values())
    pad = max(len(v) for v in histogram)
    lines = []
    for visits, images in sorted(histogram.items(), key=lambda item: int(item[0])):
        bar = "█" * max(1, round(width * images / most)) if images else ""
        noun = "visit " if visits == "1" else "visits"
        lines.append(f"{visits:>{pad}} {noun} │{bar:<{width}} {images:,} images")
    return lines


def ledger_renderables(report: dict[str, Any]) -> list[RenderableType]:
    """Everything ``ledger show`` prints, in order: header, plan, ledger, proof, histogram."""
    plan = BudgetPlan.from_dict(report["plan"])
    header = Text(f"run {report['run']} ({report['status']}), from {report['source']}")
    histogram = "\n".join(["Visits per image:", *histogram_lines(report["visits"]["histogram"])])
    return [
        header,
        plan_table([("plan", plan, {})], title="Budget plan"),
        counted_table(report),
        proof_table(report["visits"]),
        Text(histogram),
    ]
