# SPDX-License-Identifier: MIT
"""The download stage: ``img2dataset`` over the URL list, in resumable rounds.

``img2dataset`` shards its input by row, skips the shards that have a ``<shard>_stats.json`` (it
writes that file last, so its presence means the shard is whole), and records a status, an error
message and a sha256 for every sample. It does not dedupe URLs and does not know that our list
can grow (a larger ``--per-class``), so each download is a *round*: ``downloads/<round>/`` with a
frozen ``input.parquet`` of the URLs that no earlier round holds. A round that was interrupted is
resumed with the same input; before that, the files of its unfinished shards are removed, so no
partial file survives and nothing is downloaded twice into the set. A round is complete when its
``DONE`` marker exists.

Images are kept as the server sent them when they are JPEGs (``skip_reencode``), else re-encoded
to JPEG by ``img2dataset``; no resizing, since size checks and the training resolution belong to
later steps.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from solo_diversity.builders.web.urllist import write_table_atomic
from solo_diversity.errors import UserError

log = logging.getLogger(__name__)

PROVENANCE = ["engine", "query", "rank", "class", "label"]
DONE = "DONE"
SHARD_DIGITS = 5  # img2dataset's oom_shard_count: shard names 00000..99999


@dataclass(frozen=True)
class DownloadSettings:
    """What ``img2dataset`` is told; see its ``download`` for the meaning of each."""

    processes: int = 1
    threads: int = 32
    timeout: int = 10
    retries: int = 1
    shard_size: int = 1000
    distributor: str = "multiprocessing"


def rounds(out: Path) -> list[Path]:
    """The round folders, oldest first."""
    return sorted(p for p in (out / "downloads").glob("round-*") if p.is_dir())


def shard_name(shard: int) -> str:
    return f"{shard:0{SHARD_DIGITS}d}"


def _num_shards(folder: Path, size: int) -> int:
    return math.ceil(pq.read_metadata(folder / "input.parquet").num_rows / size)


def remove_unfinished(folder: Path) -> int:
    """Delete the files of the shards of ``folder`` that have no stats file; return their count."""
    removed = 0
    for table in folder.glob("[0-9]*.parquet"):
        shard = table.stem
        if not (folder / f"{shard}_stats.json").is_file():
            table.unlink()
            shutil.rmtree(folder / shard, ignore_errors=True)
            removed += 1
    shutil.rmtree(folder / "_tmp", ignore_errors=True)
    return removed


def next_round(out: Path, urls: pa.Table) -> Path | None:
    """The round to download now: an unfinished one, or a new one of the URLs no round holds."""
    existing = rounds(out)
    for folder in existing:
        if not (folder / DONE).is_file():
            return folder
    held = [pq.read_table(f / "input.parquet", columns=["url"])["url"] for f in existing]
    fresh = urls
    if held:
        known = pa.chunked_array([c for h in held for c in h.chunks], type=pa.string())
        fresh = urls.filter(pc.invert(pc.is_in(urls["url"], value_set=known.combine_chunks())))
    if fresh.num_rows == 0:
        return None
    folder = out / "downloads" / f"round-{len(existing):04d}"
    write_table_atomic(fresh, folder / "input.parquet")
    return folder


@contextlib.contextmanager
def _sigint_restored() -> Iterator[None]:
    """img2dataset installs a SIGINT handler that exits 0; turn that into KeyboardInterrupt."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    except SystemExit as stop:
        if stop.code in (0, None):
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)


def run_round(folder: Path, settings: DownloadSettings) -> None:
    """Download one round (resuming it), then mark it done; UserError if shards failed."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # its import would ask the network
    from img2dataset import download

    removed = remove_unfinished(folder)
    if removed:
        log.warning("%s: removed %d unfinished shard(s) of an interrupted run", folder, removed)
    with _sigint_restored():
        download(
            url_list=str(folder / "input.parquet"),
            input_format="parquet",
            url_col="url",
            save_additional_columns=list(PROVENANCE),
            output_folder=str(folder),
            output_format="files",
            resize_mode="no",
            skip_reencode=True,
            encode_format="jpg",
            processes_count=settings.processes,
            thread_count=settings.threads,
            timeout=settings.timeout,
            retries=settings.retries,
            number_sample_per_shard=settings.shard_size,
            oom_shard_count=SHARD_DIGITS,
            compute_hash="sha256",
            extract_exif=False,
            distributor=settings.distributor,
            incremental_mode="incremental",
        )
    missing = [
        s
        for s in range(_num_shards(folder, settings.shard_size))
        if not (folder / f"{shard_name(s)}_stats.json").is_file()
    ]
    if missing:
        raise UserError(
            f"{folder}: {len(missing)} shard(s) failed to download; run the same command again"
        )
    (folder / DONE).write_text("")


def download_all(out: Path, urls: pa.Table, settings: DownloadSettings) -> int:
    """Download every URL of ``urls`` that no finished round holds; return the rounds run."""
    ran = 0
    while (folder := next_round(out, urls)) is not None:
        run_round(folder, settings)
        ran += 1
    return ran


def samples(folder: Path) -> pa.Table:
    """The per-sample table of a finished round (provenance, status, error, sha256, file)."""
    tables = [pq.read_table(p) for p in sorted(folder.glob("[0-9]*.parquet"))]
    table = pa.concat_tables(tables, promote_options="default")
    files = [
        f"{folder.name}/{key[:SHARD_DIGITS]}/{key}.jpg" if status == "success" else ""
        for key, status in zip(table["key"].to_pylist(), table["status"].to_pylist(), strict=True)
    ]
    return table.append_column("file", pa.array(files, type=pa.string()))
