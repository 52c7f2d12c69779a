# SPDX-License-Identifier: MIT
"""The web build from end to end: query, download, validate, deduplicate, select, index.

Everything lives under one output folder, and every stage is resumable on its own:

- ``queries/<engine>/<label>.parquet`` and ``urls.parquet`` (:mod:`.urllist`);
- ``downloads/round-*/`` (:mod:`.download`) with ``validated.parquet`` once checked;
- ``status.parquet``: every URL's final status (``selected``, ``surplus``, ``duplicate``,
  ``in_reference``, ``too_small``, ``broken``, or img2dataset's ``failed_to_download`` /
  ``failed_to_resize``) with its error message;
- the index (default ``<out>/index.h5``, a paths index rooted at ``<out>/downloads``) and beside it
  ``<index>.provenance.parquet``: row ``source_position`` of an entry holds its url, engine,
  query, rank, class, sha256 and phash.

The class list and the engines are fixed at the first run (``settings.json``); the selection
settings (per class, hash distance, minimum size, references) may change between runs, which only
redoes the cheap last steps.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from solo_diversity.builders.web import dedup, download, select, urllist, validate
from solo_diversity.builders.web.engines import EngineSettings, make_engine
from solo_diversity.builders.web.queries import WebClass
from solo_diversity.errors import UserError
from solo_diversity.index.writer import IndexMeta, write_index

log = logging.getLogger(__name__)

STAGES = ("query", "download", "index")


@dataclass(frozen=True)
class WebSettings:
    """The resolved arguments of one build."""

    classes: tuple[WebClass, ...]
    engines: tuple[str, ...]
    per_class: int
    collect_factor: float = 1.6  # results asked per class / images kept (paper: 100k / 65k)
    hash_distance: int = 4
    min_size: int = 64
    references: tuple[str, ...] = ()
    seed: int = 0
    dataset: str = "web"
    check_threads: int = 4
    engine_settings: Mapping[str, EngineSettings] = field(default_factory=dict)
    download: download.DownloadSettings = field(default_factory=download.DownloadSettings)

    @property
    def per_query(self) -> int:
        """Results asked of each engine for each class."""
        return math.ceil(self.per_class * self.collect_factor / len(self.engines))


@dataclass(frozen=True)
class WebResult:
    """What a build did: per-status counts, the index (if written) and the time taken."""

    counts: dict[str, int]
    index: Path | None
    seconds: float

    @property
    def images_per_second(self) -> float:
        """Selected images per second of this call (all stages)."""
        return self.counts.get("selected", 0) / self.seconds if self.seconds else 0.0


def agree_settings(out: Path, settings: WebSettings) -> None:
    """Record the classes and engines at the first run; refuse a rerun that changes them."""
    fixed = {
        "classes": [[c.name, c.wnid, c.query] for c in settings.classes],
        "engines": list(settings.engines),
    }
    path = out / "settings.json"
    if path.is_file():
        before = json.loads(path.read_text())
        for key, value in fixed.items():
            if before.get(key) != value:
                raise UserError(
                    f"{out} was started with other {key}; use a new --out, or the same {key}"
                )
        return
    out.mkdir(parents=True, exist_ok=True)
    partial = out / ".settings.json.partial"
    partial.write_text(json.dumps(fixed, indent=1))
    partial.replace(path)


def query_stage(out: Path, settings: WebSettings) -> pa.Table:
    """Ask the engines (what is missing), then merge the URL list."""
    engines = [
        make_engine(name, settings.engine_settings.get(name, EngineSettings()))
        for name in settings.engines
    ]
    urllist.query_all(out, engines, settings.classes, settings.per_query)
    return urllist.merge(out, settings.engines, len(settings.classes))


def checked_round(folder: Path, min_size: int, threads: int) -> pa.Table:
    """A finished round's samples with our verdict, cached as ``validated.parquet``."""
    cached = folder / "validated.parquet"
    if cached.is_file():
        table = pq.read_table(cached)
        if (
            table.schema.metadata
            and table.schema.metadata.get(b"min_size") == str(min_size).encode()
        ):
            return table
    table = download.samples(folder)
    root = folder.parent
    files = table["file"].to_pylist()
    todo = [i for i, f in enumerate(files) if f]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        verdicts = dict(
            zip(
                todo,
                pool.map(lambda i: validate.check_image(root, files[i], min_size), todo),
                strict=True,
            )
        )
    status = table["status"].to_pylist()
    error = table["error_message"].to_pylist()
    phash = [""] * len(files)
    for i, verdict in verdicts.items():
        status[i] = verdict.status
        error[i] = verdict.error or None
        files[i] = verdict.file if verdict.status == validate.OK else ""
        phash[i] = verdict.phash
    keep = ["url", *download.PROVENANCE, "key", "sha256", "width", "height"]
    table = table.select(keep).append_column("round", pa.array([folder.name] * len(files)))
    for name, values in (("status", status), ("error", error), ("file", files), ("phash", phash)):
        table = table.append_column(name, pa.array(values, type=pa.string()))
    table = table.replace_schema_metadata({"min_size": str(min_size)})
    urllist.write_table_atomic(table, cached)
    return table


def judge(table: pa.Table, settings: WebSettings, cache: Path) -> pa.Table:
    """Final status of every sample: reference leaks, near-duplicates, selection."""
    order = {e: i for i, e in enumerate(settings.engines)}
    labels = np.asarray(table["label"].to_pylist(), dtype=np.int64)
    ranks = np.asarray(table["rank"].to_pylist(), dtype=np.int64)
    engines = np.asarray([order[e] for e in table["engine"].to_pylist()], dtype=np.int64)
    status = table["status"].to_pylist()
    priority = np.lexsort((engines, ranks, labels))
    ok = [int(i) for i in priority if status[i] == validate.OK]
    phashes = table["phash"].to_pylist()
    hashes = dedup.from_hex([phashes[i] for i in ok])
    note = table["error"].to_pylist()
    for ref in settings.references:
        ref_hashes, fingerprint = dedup.reference_hashes(ref, cache, settings.check_threads)
        hits = dedup.matches(hashes, ref_hashes, settings.hash_distance)
        for j in np.flatnonzero(hits >= 0).tolist():
            if status[ok[j]] == validate.OK:
                status[ok[j]] = "in_reference"
                note[ok[j]] = f"near an image of {ref} (fingerprint {fingerprint[:12]})"
    alive = [j for j in range(len(ok)) if status[ok[j]] == validate.OK]
    duplicate_of = dedup.within(hashes[alive], settings.hash_distance)
    urls = table["url"].to_pylist()
    for j, d in zip(alive, duplicate_of.tolist(), strict=True):
        if d >= 0:
            status[ok[j]] = "duplicate"
            note[ok[j]] = f"near {urls[ok[alive[d]]]}"
    eligible = np.array([s == validate.OK for s in status], dtype=bool)
    keep = select.top_per_class(labels, ranks, engines, eligible, settings.per_class)
    status = [
        "selected" if k else ("surplus" if e else s)
        for s, k, e in zip(status, keep, eligible, strict=True)
    ]
    missing = select.shortfall(labels, keep, len(settings.classes), settings.per_class)
    if missing:
        log.warning(
            "%d class(es) short of %d images: %s",
            len(missing),
            settings.per_class,
            dict(list(missing.items())[:5]),
        )
    table = table.drop_columns(["status", "error"])
    table = table.append_column("status", pa.array(status, type=pa.string()))
    table = table.append_column("error", pa.array(note, type=pa.string()))
    return table.take(pa.array(priority, type=pa.int64()))


def write_web_index(out: Path, table: pa.Table, settings: WebSettings, index_path: Path) -> Path:
    """The index of the selected images, and their provenance manifest beside it."""
    chosen = table.filter(pa.compute.equal(table["status"], "selected"))
    columns = [
        "file",
        "url",
        *download.PROVENANCE,
        "sha256",
        "phash",
        "width",
        "height",
        "round",
        "key",
    ]
    manifest = chosen.select(columns)
    manifest_path = index_path.with_name(f"{index_path.name}.provenance.parquet")
    urllist.write_table_atomic(manifest, manifest_path)
    source = {
        "builder": "web",
        "engines": list(settings.engines),
        "safesearch": "strict on every engine",
        "per_class": settings.per_class,
        "per_query": settings.per_query,
        "hash": "imagehash.phash 64-bit",
        "hash_distance": settings.hash_distance,
        "min_size": settings.min_size,
        "references": list(settings.references),
        "provenance": manifest_path.name,
    }
    meta = IndexMeta(
        dataset=settings.dataset,
        split="train",
        kind="paths",
        root=str((out / "downloads").resolve()),
        seed=settings.seed,
        source=json.dumps(source),
        class_names=tuple(c.name for c in settings.classes),
    )
    entries = zip(manifest["file"].to_pylist(), manifest["label"].to_pylist(), strict=True)
    return write_index(entries, index_path, meta)


def build(
    out: str | Path,
    settings: WebSettings,
    *,
    index_path: str | Path | None = None,
    stages: Sequence[str] = STAGES,
) -> WebResult:
    """Run (or resume) the build's ``stages`` in order.

    Args:
        out: the build folder.
        settings: the resolved arguments.
        index_path: the index to write (default ``out/index.h5``).
        stages: a subset of ``("query", "download", "index")``; a later stage reads what the
            earlier ones left on disk.

    Returns:
        A :class:`WebResult`.
    """
    start = time.perf_counter()
    root = Path(out)
    agree_settings(root, settings)
    urls_path = root / urllist.URLS_NAME
    if "query" in stages:
        urls = query_stage(root, settings)
    elif urls_path.is_file():
        urls = pq.read_table(urls_path)
    else:
        raise UserError(f"{root} has no URL list yet; run the query stage first")
    if "download" in stages:
        download.download_all(root, urls, settings.download)
    if "index" not in stages:
        return WebResult({"urls": urls.num_rows}, None, time.perf_counter() - start)
    finished = [f for f in download.rounds(root) if (f / download.DONE).is_file()]
    if not finished:
        raise UserError(f"{root} has no finished download; run the download stage first")
    parts = [checked_round(f, settings.min_size, settings.check_threads) for f in finished]
    table = judge(pa.concat_tables(parts), settings, root / "reference-hashes")
    urllist.write_table_atomic(table, root / "status.parquet")
    counts = dict(Counter(table["status"].to_pylist()))
    target = Path(index_path) if index_path is not None else root / "index.h5"
    written = write_web_index(root, table, settings, target) if counts.get("selected") else None
    if written is None:
        log.warning("no image was selected; no index written")
    return WebResult(counts, written, time.perf_counter() - start)
