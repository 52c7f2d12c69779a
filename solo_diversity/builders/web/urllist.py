# SPDX-License-Identifier: MIT
"""The Parquet URL list: every search result with its provenance, resumable and URL-deduplicated.

Each (engine, class) query is one part file, ``<out>/queries/<engine>/<label>.parquet``, written
atomically once the engine has answered in full; a rerun asks only for the parts that are missing,
so an interrupted query stage resumes without asking twice. :func:`merge` joins the parts into
``<out>/urls.parquet`` in a fixed priority order (class, rank, engine order) and keeps the first
row of each URL, so an image returned by two engines or for two classes is downloaded once, under
its best provenance.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from solo_diversity.builders.web.engines import Engine
from solo_diversity.builders.web.queries import WebClass

log = logging.getLogger(__name__)

URL_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("engine", pa.string()),
        ("query", pa.string()),
        ("rank", pa.int32()),
        ("class", pa.string()),
        ("label", pa.int32()),
    ]
)
URLS_NAME = "urls.parquet"


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` through a temporary file, so ``path`` is whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    pq.write_table(table, partial)
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, path)


def part_path(out: Path, engine: str, label: int) -> Path:
    return out / "queries" / engine / f"{label:05d}.parquet"


def hits_table(urls: Sequence[str], engine: str, cls: WebClass) -> pa.Table:
    """One query's results as URL-list rows (rank 0 = the engine's best)."""
    n = len(urls)
    return pa.table(
        {
            "url": list(urls),
            "engine": [engine] * n,
            "query": [cls.query] * n,
            "rank": list(range(n)),
            "class": [cls.name] * n,
            "label": [cls.label] * n,
        },
        schema=URL_SCHEMA,
    )


def query_all(out: Path, engines: Sequence[Engine], classes: Sequence[WebClass], count: int) -> int:
    """Ask each engine for ``count`` results per class, skipping parts already on disk.

    Returns:
        The number of queries made in this call (0 when everything was already there).
    """
    made = 0
    for cls in classes:
        for engine in engines:
            path = part_path(out, engine.name, cls.label)
            if path.is_file():
                continue
            urls = engine.search(cls.query, count)
            write_table_atomic(hits_table(urls, engine.name, cls), path)
            made += 1
            log.info("%s %r: %d results", engine.name, cls.query, len(urls))
    return made


def merge(out: Path, engine_order: Sequence[str], num_classes: int) -> pa.Table:
    """Join the parts into ``out/urls.parquet``, one row per URL (its best provenance).

    Returns:
        The merged table, in priority order (label, rank, engine order).
    """
    parts = [
        pq.read_table(part_path(out, e, c), schema=URL_SCHEMA)
        for c in range(num_classes)
        for e in engine_order
        if part_path(out, e, c).is_file()
    ]
    table = pa.concat_tables(parts) if parts else URL_SCHEMA.empty_table()
    order = {e: i for i, e in enumerate(engine_order)}
    urls, labels, ranks = (table[c].to_pylist() for c in ("url", "label", "rank"))
    engines = [order[e] for e in table["engine"].to_pylist()]
    rows = sorted(range(table.num_rows), key=lambda i: (labels[i], ranks[i], engines[i]))
    seen: set[str] = set()
    keep = []
    for i in rows:
        if urls[i] and urls[i] not in seen:
            seen.add(urls[i])
            keep.append(i)
    merged = table.take(pa.array(keep, type=pa.int64()))
    write_table_atomic(merged, out / URLS_NAME)
    log.info("URL list: %d unique of %d results", merged.num_rows, table.num_rows)
    return merged
