# SPDX-License-Identifier: MIT
"""Every (pretraining set, downstream set) distance, as JSON and as a Markdown table like Table 3.

The paper's Table 3 (Hammoud et al., arXiv:2403.13808) has a VisualDNA block (rows: pretraining
set x MUGS / DINOv2 backbone) and an FID block (rows: pretraining set x Inception); its columns are
the downstream sets. :func:`distance_table` computes each cell with
:mod:`~solo_diversity.distances.fid` / :mod:`~solo_diversity.distances.vdna`, so every dataset is
embedded once per extractor (features and VDNAs are cached). VisualDNA activation ranges an
extractor lacks are computed once from the first pretraining set.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solo_diversity.distances.extractors import Extractor, build_extractor
from solo_diversity.distances.features import LoaderSettings
from solo_diversity.distances.fid import fid
from solo_diversity.distances.samples import DatasetSample
from solo_diversity.distances.vdna import vdna_distance
from solo_diversity.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_METRICS = ("vdna:mugs_vit_base", "vdna:dinov2_vit_base", "fid:inception")
_TITLES = {"vdna": "VisualDNA (EMD) ↓", "fid": "FID ↓"}


@dataclass
class Metric:
    """A distance kind with its extractor: ``fid`` (pooled) or ``vdna`` (layered)."""

    kind: str
    extractor: Extractor

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.extractor.name}"


def parse_metric(spec: str) -> tuple[str, str]:
    """``"fid"`` / ``"fid:<extractor>"`` / ``"vdna:<extractor>"`` -> (kind, extractor name)."""
    kind, _, name = spec.partition(":")
    if kind == "fid":
        return kind, name or "inception"
    if kind == "vdna" and name:
        return kind, name
    raise UserError(f"unknown metric {spec!r}; use fid, fid:<extractor> or vdna:<extractor>")


def build_metrics(specs: list[str]) -> list[Metric]:
    """Build the extractor of every metric spec (weights from their default locations)."""
    metrics = []
    for spec in specs:
        kind, name = parse_metric(spec)
        metrics.append(Metric(kind, build_extractor(name, layered=kind == "vdna")))
    return metrics


def distance_table(
    pretrain: list[DatasetSample],
    downstream: list[DatasetSample],
    metrics: list[Metric],
    *,
    bins: int = 1000,
    settings: LoaderSettings | None = None,
    cache_root: Path | None = None,
) -> dict[str, Any]:
    """Compute every metric for every (pretraining, downstream) pair.

    Args:
        pretrain: the pretraining sets (table rows, with each metric).
        downstream: the downstream sets (table columns).
        metrics: the distances to compute.
        bins: VisualDNA histogram bins.
        settings: batching and device.
        cache_root: cache root; ``None`` = beside each index.

    Returns:
        ``{"pretrain": [names], "downstream": [names], "bins", "results": [{"metric", "extractor",
        "pretrain", "downstream", "value", "n_pretrain", "n_downstream"}, ...]}``.
    """
    if not pretrain or not downstream:
        raise UserError("give at least one --pretrain and one --downstream index")
    results = []
    for metric in metrics:
        for p in pretrain:
            for d in downstream:
                if metric.kind == "fid":
                    r = fid(p, d, metric.extractor, settings=settings, cache_root=cache_root)
                    value, n_p, n_d = r.fid, r.n_a, r.n_b
                else:
                    v = vdna_distance(
                        p,
                        d,
                        metric.extractor,
                        bins=bins,
                        reference=pretrain[0],
                        settings=settings,
                        cache_root=cache_root,
                    )
                    value, n_p, n_d = v.emd, v.n_a, v.n_b
                log.info("%s %s -> %s: %.4f", metric.label, p.name, d.name, value)
                results.append(
                    {
                        "metric": metric.kind,
                        "extractor": metric.extractor.name,
                        "pretrain": p.name,
                        "downstream": d.name,
                        "value": value,
                        "n_pretrain": n_p,
                        "n_downstream": n_d,
                    }
                )
    return {
        "pretrain": [p.name for p in pretrain],
        "downstream": [d.name for d in downstream],
        "bins": bins,
        "results": results,
    }


def markdown_table(table: dict[str, Any], *, digits: int = 2) -> str:
    """Table 3's layout: one block per metric kind; rows pretraining set x extractor."""
    columns = table["downstream"]
    blocks = []
    for kind in ("vdna", "fid"):
        rows = [r for r in table["results"] if r["metric"] == kind]
        if not rows:
            continue
        lines = [
            f"**{_TITLES[kind]}**",
            "",
            "| D_SSL | Backbone | " + " | ".join(columns) + " |",
            "|---|---|" + "---:|" * len(columns),
        ]
        extractors = list(dict.fromkeys(r["extractor"] for r in rows))
        for pretrain in table["pretrain"]:
            for extractor in extractors:
                cells = {
                    r["downstream"]: r["value"]
                    for r in rows
                    if r["pretrain"] == pretrain and r["extractor"] == extractor
                }
                values = [f"{cells[c]:.{digits}f}" if c in cells else "-" for c in columns]
                lines.append(f"| {pretrain} | {extractor} | " + " | ".join(values) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def write_table(table: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``distances.json`` and ``distances.md`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "distances.json", out / "distances.md"
    json_path.write_text(json.dumps(table, indent=2) + "\n")
    md_path.write_text(markdown_table(table))
    return json_path, md_path
